// A job group's service is health-gated end to end (issue 13 items 4 and 6):
// its allocation's endpoint carries the group's check, DNS answers it only
// once the check passes (the task listens a few seconds after it starts), and
// a rolling update keeps the old instance until the new one's check has
// passed for minHealthyMs, so the name answers throughout; a version whose
// check never passes is reverted (autoRevert) to the one before, and the name
// answers throughout that too; `plexctl job history` lists the versions.

import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { eventually, upCluster } from '../../helpers/fixture.js'

t.setTimeout(400_000)

interface Alloc {
  id: string
  jobVersion: number
  status: string
  address?: string
}

/** the task listens on 8080 only after `delay` seconds (never without one) */
const spec = (version: string, delay?: number) => `name: hc
type: service
groups:
  - name: web
    count: 1
    update: { maxParallel: 1, minHealthyMs: 1000, healthyDeadlineMs: 20000, autoRevert: true }
    service:
      name: hcweb
      ports: [{ name: http, port: 8080, protocol: tcp }]
      checks: [{ name: up, type: tcp, port: http, intervalMs: 2000, timeoutMs: 500, failures: 3 }]
    tasks:
      - name: web
        driver: exec
        config: { command: ["sh", "-c", "echo ${version}; ${delay === undefined ? 'exec sleep 600' : `sleep ${delay}; exec busybox httpd -f -p 8080 -h /`}"] }
        resources: { cpu: 50, memoryMb: 32 }
        killTimeoutMs: 1000
`

t.test('DNS answers a job service member once its check passes; a rolling update waits for it', async (t) => {
  const c = upCluster(t, { hosts: 1, prefix: 'hc' })
  t.equal(c.run('h1', 'client', ['sleep', '600']).status, 0, 'a client container')
  const file = join(tmpdir(), `${c.name}-hc.yaml`)
  t.teardown(() => rmSync(file, { force: true }))
  const allocs = () => c.plexctlJson<Alloc[]>('h1', ['allocs', '--job', 'hc'])
  /** the name's addresses; undefined when dig got no reply (a timeout on a loaded machine is not an answer) */
  const answers = (): string[] | undefined => {
    const r = c.execCtr('client', ['dig', '+short', '+time=2', '+tries=1', 'hcweb.svc.plexus.internal'])
    log.push(`${Date.now()} ${r.status} ${r.stdout.trim().replace(/\n/g, ',')}`)
    if (r.status !== 0) return undefined
    return r.stdout
      .split('\n')
      .filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l))
      .sort()
  }
  const log: string[] = []
  /** queries the name until it answers with a running allocation of `version` alone, counting empty answers */
  const answeredBy = async (version: number, timeoutMs: number) => {
    let empty = 0
    let samples = 0
    const alloc = await eventually(
      () => {
        const got = answers()
        if (!got) return undefined
        samples++
        if (got.length === 0) empty++
        const a = allocs().find((x) => x.jobVersion === version && x.status === 'running' && x.address)
        return a && got.length === 1 && got[0] === a.address ? a : undefined
      },
      timeoutMs,
      200,
    )
    if (empty) t.comment(`dig: ${log.join('\n')}`)
    return { alloc, empty, samples }
  }

  writeFileSync(file, spec('v1', 8))
  t.equal(c.exec('h1', ['plexctl', 'job', 'run', file]).status, 0, 'job run')
  const v1 = await eventually(() => allocs().find((a) => a.status === 'running' && a.address), 120_000, 250)
  t.ok(v1, 'the allocation runs with an address')
  if (!v1) return
  // the task sleeps before it listens: its check fails, and for its first 4 s (failures × interval) it
  // is not yet critical either; DNS answers it only once the check has passed
  const early = await eventually(answers, 5000, 100)
  t.same(early, [], `no answer while its check has not passed (got ${early?.join(',')})`)
  const answered = await eventually(() => answers()?.includes(v1.address as string), 30_000, 250)
  t.ok(answered, `answered with ${v1.address} once its check passed`)

  // version 2 listens 8 s after it starts, its update's minHealthyMs is 1 s: were "healthy" only
  // running for 1 s, the old instance would stop 7 s before the new one answers
  writeFileSync(file, spec('v2', 8))
  t.equal(c.exec('h1', ['plexctl', 'job', 'run', file]).status, 0, 'job run: version 2')
  const v2 = await answeredBy(2, 120_000)
  t.ok(v2.alloc, `the name answers with version 2's address only (${v2.alloc?.address})`)
  t.equal(v2.empty, 0, `the name answered throughout the update (${v2.samples} queries)`)
  const left = await eventually(() => !allocs().some((a) => a.id === v1.id && a.status === 'running'), 30_000)
  t.ok(left, 'and the old allocation was stopped')
  // version 3 never listens: its check never passes, and 20 s after it was placed (healthyDeadlineMs)
  // its owner reverts the job to version 2's spec as version 4; version 2 answers meanwhile
  writeFileSync(file, spec('v3'))
  t.equal(c.exec('h1', ['plexctl', 'job', 'run', file]).status, 0, 'job run: version 3, never healthy')
  const v4 = await answeredBy(4, 150_000)
  t.ok(v4.alloc, `reverted: version 4 (version 2's spec) answers (${v4.alloc?.address})`)
  t.equal(v4.alloc?.id, v2.alloc?.id, "in place: version 2's instance, which served throughout, is version 4")
  t.equal(
    v4.empty,
    0,
    `the name answered throughout the failed update and the revert (${v4.samples} queries)`,
  )
  t.notOk(
    allocs().some((a) => a.jobVersion === 3 && a.status === 'running'),
    'no version-3 allocation runs',
  )
  const history = c.plexctlJson<{ version: number; current: boolean; spec: unknown }[]>('h1', [
    'job',
    'history',
    'hc',
  ])
  t.same(
    history.map((v) => [v.version, v.current]),
    [
      [4, true],
      [3, false],
      [2, false],
      [1, false],
    ],
    'plexctl job history: version 4 current, 3, 2 and 1 kept',
  )
  t.same(history[0]?.spec, history[2]?.spec, "version 4 is version 2's spec")
  t.match(
    readFileSync(`/run/plexus-fixture/${c.name}/h1/plexusd.log`, 'utf8'),
    /rolling update failed: reverted/,
    'the owner logged the revert',
  )
  t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'hc']).status, 0, 'job stop')
})
