// Two lifecycle promises of the task runner (issue 13), on real agents in the netns test bed:
// - a system job follows hosts that join: the new host runs it within 5 s of its subnet lease
//   (measured from the lease line of its log to its allocation's `running` state);
// - 100 start/stop cycles of a job leave nothing: no namespace, veth, cgroup, address
//   allocation, process, store record, runner state or log directory of theirs.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { netnsName } from '../../../src/runner/network.js'
import { CLUSTER, type Cluster, eventually, run, upCluster } from '../../helpers/fixture.js'
import { type Alloc, hostApi, hostDir, SLEEP_TASKS } from '../../helpers/runner.js'
import { allocations, hostVeths } from '../cni/plugin.js'

t.setTimeout(900_000)

/** the job's allocations, from the host's API socket (hostApi: the cycles below poll it thousands of times) */
const allocsOf = (c: Cluster, job: string, h = 'h1') =>
  hostApi<(Alloc & { updatedAt: number })[]>(c, h, 'GET', `/v1/allocs?job=${encodeURIComponent(job)}`)

const spec = (name: string, type: string) => `name: ${name}
type: ${type}
groups:
  - name: g
    count: 1
${SLEEP_TASKS}`

function jobFile(t: { teardown(fn: () => unknown): void }, c: Cluster, name: string, type: string): string {
  const f = join(tmpdir(), `${c.name}-${name}.yaml`)
  writeFileSync(f, spec(name, type))
  t.teardown(() => rmSync(f, { force: true }))
  return f
}

/** ms epoch of the first line of a host's log whose message starts with `msg` */
function logged(c: Cluster, host: string, msg: string): number | undefined {
  for (const l of readFileSync(join(hostDir(c, host), 'plexusd.log'), 'utf8').split('\n')) {
    if (!l.includes(`"msg":"${msg}`)) continue
    const at = Date.parse((JSON.parse(l) as { time: string }).time)
    if (Number.isFinite(at)) return at
  }
  return undefined
}

t.test('a system job runs on a host that joins, within 5 s of its lease', async (t) => {
  const c = upCluster(t, { hosts: 2, prefix: 'sy' })
  t.equal(c.exec('h1', ['plexctl', 'job', 'run', jobFile(t, c, 'sys', 'system')]).status, 0, 'job run')
  const two = await eventually(async () => {
    const a = await allocsOf(c, 'sys').catch(() => undefined)
    return a?.length === 2 && a.every((x) => x.status === 'running') ? a : undefined
  }, 60_000)
  t.same(two?.map((a) => a.hostName).sort(), ['h1', 'h2'], 'one allocation per host')

  const joined = run(CLUSTER, ['join', '--name', c.name])
  t.equal(joined.status, 0, `cluster join: ${joined.stderr}`)
  const h3 = await eventually(
    async () =>
      (await allocsOf(c, 'sys').catch(() => undefined))?.find(
        (a) => a.hostName === 'h3' && a.status === 'running',
      ),
    30_000,
    200,
  )
  t.ok(h3, 'h3 runs the system job')
  const leased = logged(c, 'h3', 'acquired lease')
  t.ok(leased, "h3's log says when it acquired its lease")
  if (h3 && leased) {
    const ms = h3.updatedAt - leased
    t.comment(`h3: lease at ${new Date(leased).toISOString()}, allocation running ${ms} ms later`)
    t.ok(ms <= 5000, `running ${ms} ms after the lease (≤ 5000)`)
  }
  t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'sys']).status, 0, 'job stop')
})

t.test('100 start/stop cycles of a job leave nothing', async (t) => {
  const c = upCluster(t, { hosts: 1, prefix: 'cy' })
  const text = spec('cyc', 'service')
  const ok = () => true
  const no = (err: unknown) => {
    t.comment(String(err))
    return false
  }
  const runnerDir = join(hostDir(c, 'h1'), 'state/runner')
  const ids = new Set<string>()
  const started = Date.now()
  let failures = 0
  for (let i = 0; i < 100 && failures === 0; i++) {
    // submitted and stopped through the API as plexctl does (PUT /v1/jobs, DELETE /v1/jobs/<name>), without
    // its process start-up each time: the cycles measure the agent (plexctl job run is tested elsewhere)
    if (!(await hostApi(c, 'h1', 'PUT', '/v1/jobs', { text }).then(ok, no))) failures++
    const up = await eventually(
      async () => (await allocsOf(c, 'cyc').catch(() => undefined))?.find((a) => a.status === 'running'),
      30_000,
      100,
    )
    if (!up) failures++
    else ids.add(up.id)
    if (!(await hostApi(c, 'h1', 'DELETE', '/v1/jobs/cyc').then(ok, no))) failures++
    const down = await eventually(
      async () =>
        (await allocsOf(c, 'cyc').catch(() => undefined))?.length === 0 &&
        (!existsSync(runnerDir) || readdirSync(runnerDir).length === 0),
      30_000,
      100,
    )
    if (!down) failures++
    if (failures) t.fail(`cycle ${i + 1}: ${up ? 'did not stop' : 'did not start'}`)
  }
  t.equal(failures, 0, '100 cycles: each started and stopped')
  t.equal(ids.size, 100, 'a new allocation each time')
  t.comment(`100 cycles in ${((Date.now() - started) / 1000).toFixed(1)} s`)

  t.same(hostVeths(c, 'h1'), [], 'no veth left')
  t.same(allocations(c, 'h1'), [], 'no address held')
  const namespaces = [...ids].map(netnsName).filter((n) => existsSync(`/run/netns/${n}`))
  t.same(namespaces, [], 'no allocation namespace left')
  const cgroups = ['memory', 'cpu', 'pids'].flatMap((k) =>
    [...ids].map((id) => `/sys/fs/cgroup/${k}/plexus/${id}`).filter((d) => existsSync(d)),
  )
  t.same(cgroups, [], 'no cgroup left')
  const procs = run('pgrep', ['-f', `sleep 600`]).stdout.split('\n').filter(Boolean)
  const ours = procs.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').includes('PLEXUS_JOB=cyc')
    } catch {
      return false
    }
  })
  t.same(ours, [], 'no task process left')
  t.same(existsSync(runnerDir) ? readdirSync(runnerDir) : [], [], 'no runner state or log directory left')
  const records = ['allocs/', 'allocstate/']
    .flatMap((p) => c.plexctlJson<string[]>('h1', ['kv', 'ls', p]))
    .filter((k) => k.includes('cyc'))
  t.same(records, [], 'no allocs/ or allocstate/ record left')
})
