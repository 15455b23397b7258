import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { REPO } from '../../../bench/lib/report.js'
import { loadResults, renderTable, spliceTable, TABLE_END, TABLE_START } from '../../../bench/lib/table.js'

t.test("the README's performance table is what bench/results holds", async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8')
  const shown = readme.slice(readme.indexOf(TABLE_START), readme.indexOf(TABLE_END))
  t.ok(shown.length > 0, 'the README has the generated table')
  t.equal(spliceTable(readme, renderTable(loadResults())), readme, 'regenerated, nothing changes')
  // every number in the table is a value of some result file
  const values = new Set(loadResults().flatMap((r) => Object.values(r).map(String)))
  const rows = shown.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| bench '))
  for (const row of rows) {
    const [, , plexus = '', ref = '', ratio = ''] = row.split(' | ')
    // the reference cell starts with its name (which may hold digits): only figures before a unit or "/"
    const refFigures = [...ref.matchAll(/(\d+(?:\.\d+)?)(?= (?:\/|ms|MB|qps|Gbit\/s|s)(?: |$))/g)].map(
      (m) => m[1],
    )
    // a figure stands alone: the digits inside a field name such as dial_p99_ms are not one
    const figures = (cell: string) => cell.match(/(?<![\w.])\d+(?:\.\d+)?(?![\w.])/g) ?? []
    for (const n of [...figures(plexus), ...refFigures, ...figures(ratio)])
      t.ok(values.has(n as string), `${n} (in "${row.slice(0, 60)}…") is held by a result file`)
  }
})

t.test('goals met or missed, machine and date per run, unknown benches and fields listed', async (t) => {
  const table = renderTable([
    {
      bench: 'converge',
      date: '2026-12-01',
      machine_cores: 2,
      machine_model: 'Test CPU @ 2.0GHz',
      load_avg_1m: 3.5,
      runs: 100,
      write_p50_ms: 40,
      write_p99_ms: 620,
      etcd_write_p50_ms: 10,
      etcd_write_p99_ms: 400,
      write_p99_ratio: 1.55,
      join_ms: 900,
      brand_new_ms: 12,
    },
    { bench: 'soak', date: '2026-12-02', hours: 1, leaked_fds: 0 },
    { bench: 'overlay', date: '2026-12-03', routes_p50_ms: 90, routes_p99_ms: 300 },
  ]).split('\n')
  const write = table.find((l) => l.includes('write on one host')) ?? ''
  t.match(write, /\| 40 \/ 620 ms \|/, 'p50 / p99 as recorded')
  t.match(
    write,
    /etcd, 3 members, an etcdctl watch on each host: 10 \/ 400 ms \| 1\.55 \|/,
    'the reference and the ratio',
  )
  t.match(write, /≤ 1: \*\*missed\*\*/, "a p99 1.55 × etcd's misses the goal of at most etcd's")
  t.match(write, /2026-12-01; 2 cores, Test CPU @ 2\.0GHz, load 3\.5; 100 runs/, 'date, machine, runs')
  t.match(table.find((l) => l.includes('full sync')) ?? '', /≤ 2000: \*\*met\*\*/, 'join 900 ms meets 2 s')
  t.notOk(
    table.some((l) => l.includes('RSS')),
    'no row for a figure the run does not hold',
  )
  t.match(table.find((l) => l.startsWith('| converge | other figures')) ?? '', /brand_new_ms 12/)
  const soak = table.find((l) => l.startsWith('| soak ')) ?? ''
  t.match(soak, /hours 1, leaked_fds 0/, 'an unknown bench: its figures listed')
  t.match(soak, /2026-12-02; machine not recorded/, 'a run without machine fields says so')
  t.match(
    table.find((l) => l.includes('routes programmed')) ?? '',
    /\(method: not recorded\)/,
    'how, when not recorded',
  )
})
