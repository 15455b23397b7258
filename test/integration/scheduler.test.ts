// Jobs on real agents (3 hosts in the netns test bed): a job is placed and
// every slot admitted by its host; the owner's agent is SIGKILLed and another
// host owns the job and places the dead host's slots again within the failure
// detector's bound; the old owner comes back and the count stays at the spec,
// nothing moved back, no slot held twice. Stop removes every allocation.
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { type Cluster, eventually, upCluster } from '../helpers/fixture.js'

// a multi-host fixture run outlasts tap's 300 s file default on a loaded 2-core machine
t.setTimeout(1_200_000)

interface Allocation {
  id: string
  group: string
  slot: string
  hostName: string
  status: string
}
interface JobStatus {
  owner: { name?: string } | null
  allocations: Allocation[]
}

/** the agent's default failure detector: dead after 6 s of silence, checked twice a second */
const DEAD_AFTER_MS = 6000

const SPEC = `name: shop
type: service
groups:
  - name: db
    count: 1
    tasks:
      - name: db
        driver: exec
        config: { command: ["sleep", "600"] }
        resources: { cpu: 200, memoryMb: 64 }
  - name: api
    count: 2
    constraints:
      - operator: distinct_hosts
    talksTo:
      - service: db
        weight: 10
    tasks:
      - name: api
        driver: exec
        config: { command: ["sleep", "600"] }
        resources: { cpu: 100, memoryMb: 32 }
`

/** admitted by its host, and then (the runner) on its way to running or running */
const holds = (a: Allocation) => ['admitted', 'pending', 'starting', 'running'].includes(a.status)
const status = (c: Cluster, host: string) => c.plexctlJson<JobStatus>(host, ['job', 'status', 'shop'])
/** the allocations that hold a slot, one line each */
const holding = (s: JobStatus) => s.allocations.filter(holds).map((a) => `${a.group}/${a.slot}@${a.hostName}`)

t.test('3 hosts: place, lose the owner, re-place, owner returns, stop', { timeout: 240_000 }, async (t) => {
  const c = upCluster(t, { hosts: 3, prefix: 'sch' })
  const file = join(tmpdir(), `${c.name}-shop.yaml`)
  writeFileSync(file, SPEC)
  t.teardown(() => rmSync(file, { force: true }))
  const all = ['h1', 'h2', 'h3']
  t.ok(
    await eventually(
      () =>
        all.every((h) => c.plexctlJson<{ state: string }[]>(h, ['hosts']).every((x) => x.state === 'alive')),
      30_000,
      500,
    ),
    'every host alive',
  )

  const bad = c.exec('h1', ['plexctl', 'job', 'run', '/dev/null'])
  t.not(bad.status, 0, 'an empty spec is refused')
  t.match(bad.stderr, /PLX_JOB_INVALID|invalid/, 'with the job error')

  const run = c.exec('h2', ['plexctl', 'job', 'run', file])
  t.equal(run.status, 0, `job run: ${run.stderr}`)
  const placed = await eventually(() => {
    const s = status(c, 'h1')
    return holding(s).length === 3 ? s : undefined
  }, 20_000)
  t.ok(placed, 'three slots admitted by their hosts')
  if (!placed) return
  const apiHosts = placed.allocations.filter((a) => a.group === 'api').map((a) => a.hostName)
  t.equal(new Set(apiHosts).size, 2, 'api slots on distinct hosts')
  const ownerName = placed.owner?.name as string
  t.ok(all.includes(ownerName), `owner is ${ownerName}`)
  t.same(holding(status(c, 'h3')).sort(), holding(placed).sort(), 'every host sees the same allocations')

  // the owner dies: the next host by the same rule owns the job and places its slots again
  const survivors = all.filter((h) => h !== ownerName)
  const before = new Set(placed.allocations.map((a) => a.id))
  const onDead = placed.allocations.filter((a) => a.hostName === ownerName).length
  t.equal(c.stop(ownerName, 'KILL').status, 0, `SIGKILL ${ownerName}`)
  const killedAt = Date.now()
  const moved = await eventually(
    () => {
      const s = status(c, survivors[0] as string)
      const live = s.allocations.filter((a) => holds(a) && a.hostName !== ownerName)
      return live.length === 3 && s.owner?.name !== ownerName ? s : undefined
    },
    DEAD_AFTER_MS + 20_000,
    250,
  )
  const tookMs = Date.now() - killedAt
  t.ok(moved, `a survivor owns the job and all 3 slots run on survivors (${tookMs} ms after the kill)`)
  t.ok(tookMs < DEAD_AFTER_MS + 5000, `within the detector's ${DEAD_AFTER_MS} ms + 5 s (${tookMs} ms)`)
  t.comment(`owner lost; job re-placed after ${tookMs} ms`)
  if (!moved) return
  const kept = moved.allocations.filter((a) => holds(a) && before.has(a.id))
  t.equal(kept.length, 3 - onDead, 'slots on live hosts were adopted (same allocation ids), not placed again')

  // the old owner returns (it owns the job again by the same rule): nothing moves back, no slot held twice
  t.equal(c.start(ownerName).status, 0, `restart ${ownerName}`)
  const settled = await eventually(
    () => {
      const s = status(c, ownerName)
      const lines = holding(s)
      const others = all.every((h) => holding(status(c, h)).sort().join() === lines.sort().join())
      return lines.length === 3 && s.owner?.name === ownerName && others ? s : undefined
    },
    30_000,
    500,
  )
  t.ok(settled, 'the returned host owns the job again and every host agrees on 3 allocations')
  if (settled) {
    t.same(
      holding(settled).sort(),
      holding(moved).sort(),
      'the allocations placed while it was away stay where they are',
    )
    t.equal(
      new Set(settled.allocations.filter(holds).map((a) => `${a.group}/${a.slot}`)).size,
      3,
      'each slot once',
    )
  }

  t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'shop']).status, 0, 'job stop')
  t.ok(
    await eventually(() => all.every((h) => status(c, h).allocations.length === 0), 20_000, 500),
    'every allocation and its host state removed on every host',
  )
  const ls = c.plexctlJson<{ name: string; stopped: boolean; wanted: number }[]>('h2', ['job', 'ls'])
  t.same(ls, [{ ...ls[0], name: 'shop', stopped: true, wanted: 0 }], 'the job is listed as stopped')
})
