// Jobs on real agents (3 hosts in the netns test bed): a job is placed and
// every slot admitted by its host; the owner's agent is SIGKILLed and another
// host owns the job and places the dead host's slots again within the failure
// detector's bound; the old owner comes back and the count stays at the spec,
// nothing moved back, no slot held twice. A host holding a slot is cut off
// for 20 s: the others place its slot again; after the heal every host agrees
// on the spec's count within 10 s, each slot held once. Stop removes every
// allocation.
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { UNDERLAY_PREFIX } from '../../netns-fixtures/lib/state.js'
import type { JobDetail } from '../../src/api/contract/jobs.js'
import { type Cluster, eventually, run as runCmd, upCluster } from '../helpers/fixture.js'
import { hostApi } from '../helpers/runner.js'

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

t.test(
  '3 hosts: place, lose the owner, re-place, owner returns, partition, stop',
  { timeout: 300_000 },
  async (t) => {
    const c = upCluster(t, { hosts: 3, prefix: 'sch' })
    const file = join(tmpdir(), `${c.name}-shop.yaml`)
    writeFileSync(file, SPEC)
    t.teardown(() => rmSync(file, { force: true }))
    const all = ['h1', 'h2', 'h3']
    t.ok(
      await eventually(
        () =>
          all.every((h) =>
            c.plexctlJson<{ state: string }[]>(h, ['hosts']).every((x) => x.state === 'alive'),
          ),
        30_000,
        500,
      ),
      'every host alive',
    )

    const bad = c.exec('h1', ['plexctl', 'job', 'run', '/dev/null'])
    t.not(bad.status, 0, 'an empty spec is refused')
    t.match(bad.stderr, /PLX_JOB_INVALID|invalid/, 'with the job error')

    // a job no host could ever take: refused with every reason, nothing written; plan names the filter
    const nowhere = join(tmpdir(), `${c.name}-nowhere.yaml`)
    writeFileSync(
      nowhere,
      SPEC.replace('name: shop', 'name: nowhere').replace(
        '      - operator: distinct_hosts',
        '      - operator: distinct_hosts\n      - { attribute: zone, operator: "=", value: mars }',
      ),
    )
    t.teardown(() => rmSync(nowhere, { force: true }))
    const refused = c.exec('h1', ['plexctl', 'job', 'run', nowhere])
    t.not(refused.status, 0, 'an unplaceable job is refused')
    t.match(
      refused.stderr,
      /cannot be placed.*group api: 2 of 2 slots.*constraint 3 \(e\.g\. zone = mars.*PLX_JOB_UNPLACEABLE/,
      'with every group it cannot place, the filter and the code',
    )
    t.notOk(
      c.plexctlJson<{ name: string }[]>('h1', ['job', 'ls']).some((j) => j.name === 'nowhere'),
      'nothing written',
    )
    const why = c.exec('h1', ['plexctl', 'job', 'plan', nowhere])
    t.match(
      why.stdout,
      /group api: 0\/2 placed[\s\S]*constraint: zone = mars/,
      'plan shows the filter on every host',
    )

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
    t.equal(
      kept.length,
      3 - onDead,
      'slots on live hosts were adopted (same allocation ids), not placed again',
    )

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

    // partition: a host holding a slot (not the owner) cut off from the other two for 20 s
    const owner = settled?.owner?.name ?? ownerName
    const victim = all.find(
      (h) => h !== owner && (settled?.allocations ?? []).some((a) => holds(a) && a.hostName === h),
    ) as string
    const rest = all.filter((h) => h !== victim)
    const ipOf = (h: string) => `${UNDERLAY_PREFIX}.${10 + Number(h.slice(1))}`
    const cut = rest.flatMap((h) => [
      `ip saddr ${ipOf(victim)} ip daddr ${ipOf(h)} drop`,
      `ip saddr ${ipOf(h)} ip daddr ${ipOf(victim)} drop`,
    ])
    const underlay = (args: string[], input?: string) =>
      runCmd('ip', ['netns', 'exec', `${c.name}-underlay`, 'nft', ...args], input ? { input } : {})
    const heal = () => underlay(['delete', 'table', 'bridge', 'plexus_sched_part'])
    t.teardown(() => void heal())
    const parted = underlay(
      ['-f', '-'],
      `table bridge plexus_sched_part {\n chain cut {\n type filter hook forward priority 0;\n ${cut.join('\n ')}\n }\n}\n`,
    )
    t.equal(parted.status, 0, `${victim} cut off from ${rest.join(', ')}: ${parted.stderr}`)
    const cutAt = Date.now()
    /** the job as one host's API says: holding allocations as "group/slot@host" */
    const view = async (h: string) =>
      (await hostApi<JobDetail>(c, h, 'GET', '/v1/jobs/shop').catch(() => undefined))?.allocations
        .filter((a) => holds(a as Allocation))
        .map((a) => `${a.group}/${a.slot}@${a.hostName}`)
        .sort() ?? []
    const replaced = await eventually(
      async () => {
        const v = await view(rest[0] as string)
        return v.length === 3 && v.every((l) => !l.endsWith(`@${victim}`)) ? v : undefined
      },
      20_000,
      250,
    )
    t.ok(
      replaced,
      `the other side places ${victim}'s slot again during the partition (${Date.now() - cutAt} ms)`,
    )
    await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - cutAt))))
    t.equal(heal().status, 0, 'heal after 20 s')
    const healedAt = Date.now()
    let doubledMs = 0
    const agreed = await eventually(
      async () => {
        const views = await Promise.all(all.map(view))
        const slots = (v: string[]) => new Set(v.map((l) => l.split('@')[0]))
        if (views.some((v) => v.length !== slots(v).size)) doubledMs = Date.now() - healedAt
        const one = views[0]?.join()
        return views.every((v) => v.length === 3 && slots(v).size === 3 && v.join() === one)
          ? views[0]
          : undefined
      },
      30_000,
      250,
    )
    const settledMs = Date.now() - healedAt
    t.ok(agreed, `after the heal every host agrees on 3 allocations, each slot once (${settledMs} ms)`)
    t.ok(
      settledMs <= 10_000,
      `within 10 s of the heal (${settledMs} ms; a slot seen held twice until ${doubledMs} ms)`,
    )

    t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'shop']).status, 0, 'job stop')
    t.ok(
      await eventually(() => all.every((h) => status(c, h).allocations.length === 0), 20_000, 500),
      'every allocation and its host state removed on every host',
    )
    const ls = c.plexctlJson<{ name: string; stopped: boolean; wanted: number }[]>('h2', ['job', 'ls'])
    t.same(ls, [{ ...ls[0], name: 'shop', stopped: true, wanted: 0 }], 'the job is listed as stopped')
  },
)
