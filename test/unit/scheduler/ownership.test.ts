// The rules every host applies to the same records without talking: who owns
// a job, which claim holds a slot, what a host admits, what the owner writes.
import t from 'tap'
import { admit } from '../../../src/scheduler/admission.js'
import { jobOwner } from '../../../src/scheduler/owner.js'
import { ownerPlan } from '../../../src/scheduler/owner-plan.js'
import { place } from '../../../src/scheduler/placement/solver.js'
import type { AllocStateValue, AllocStatus, AllocValue, JobValue } from '../../../src/scheduler/records.js'
import { type Claim, claimsOf, settle } from '../../../src/scheduler/settle.js'
import { group, host, input, job } from './fixtures.js'

const peers = Array.from({ length: 10 }, (_, i) => `peer-h${i}`)

t.test('job owner: the same on every host, only the dead owner’s jobs move, spread over hosts', async (t) => {
  const jobs = Array.from({ length: 500 }, (_, i) => `job${i}`)
  const owners = new Map(jobs.map((j) => [j, jobOwner(j, peers)]))
  t.equal(
    jobOwner('job1', [...peers].reverse()),
    owners.get('job1'),
    'order of the alive set does not matter',
  )
  t.equal(jobOwner('job1', []), undefined, 'nobody alive, no owner')
  const perHost = new Map<string, number>()
  for (const o of owners.values()) perHost.set(o as string, (perHost.get(o as string) ?? 0) + 1)
  t.equal(perHost.size, 10, 'every host owns some jobs')
  for (const [p, n] of perHost) t.ok(n > 20 && n < 80, `${p} owns ${n} of 500 (expected about 50)`)
  const dead = 'peer-h3'
  const rest = peers.filter((p) => p !== dead)
  for (const j of jobs) {
    const after = jobOwner(j, rest)
    if (owners.get(j) === dead) t.not(after, dead)
    else if (after !== owners.get(j)) t.fail(`${j} moved from a live owner`)
  }
  const joined = [...peers, 'peer-h10']
  const moved = jobs.filter((j) => jobOwner(j, joined) !== owners.get(j))
  t.ok(
    moved.every((j) => jobOwner(j, joined) === 'peer-h10'),
    'a joining host takes only jobs it wins',
  )
  t.ok(moved.length > 10 && moved.length < 90, `about 1/11 move to the new host (${moved.length})`)
})

const alloc = (o: Partial<AllocValue> & { id: string; host: string }): AllocValue => ({
  job: 'web',
  jobVersion: 1,
  group: 'g',
  slot: '0',
  hostName: o.host.replace('peer-', ''),
  resources: { cpu: 100, memoryMb: 64 },
  createdAt: 1000,
  ...o,
})
/** no replacements among these claims: the health gate is never asked */
const ready = () => true
const state = (a: AllocValue, status: AllocStatus, reason?: string): AllocStateValue => ({
  ...a,
  status,
  updatedAt: 2000,
  ...(reason ? { reason } : {}),
})

t.test('settling a slot held twice: the same verdict whatever order the records come in', async (t) => {
  const a = alloc({ id: 'web-g-aaaa', host: 'peer-h1', createdAt: 1000 })
  const b = alloc({ id: 'web-g-bbbb', host: 'peer-h2', createdAt: 900 })
  const alive = new Set(['peer-h1', 'peer-h2'])
  const one = settle(
    claimsOf(
      [
        { owner: 'peer-h1', alloc: a },
        { owner: 'peer-h2', alloc: b },
      ],
      [],
    ).values(),
    alive,
    false,
    ready,
  )
  const two = settle(
    claimsOf(
      [
        { owner: 'peer-h2', alloc: b },
        { owner: 'peer-h1', alloc: a },
      ],
      [],
    ).values(),
    alive,
    false,
    ready,
  )
  t.equal(one.get('g/0')?.winner.alloc.id, 'web-g-aaaa', 'the later placement (the replacement) wins')
  t.equal(two.get('g/0')?.winner.alloc.id, 'web-g-aaaa', 'in either order')
  t.same(
    one.get('g/0')?.losers.map((c) => c.alloc.id),
    ['web-g-bbbb'],
  )
  const pair = [
    { owner: 'peer-h1', alloc: a },
    { owner: 'peer-h2', alloc: b },
  ]
  // a placement its host has admitted beats a later one nobody has admitted yet
  const admitted = settle(claimsOf(pair, [state(b, 'running')]).values(), alive, false, ready)
  t.equal(admitted.get('g/0')?.winner.alloc.id, 'web-g-bbbb', 'admitted beats later')
  const tie = alloc({ id: 'web-g-0000', host: 'peer-h2', createdAt: 1000 })
  const tied = settle(
    claimsOf([pair[0] as (typeof pair)[0], { owner: 'peer-h2', alloc: tie }], []).values(),
    alive,
    false,
    ready,
  )
  t.equal(tied.get('g/0')?.winner.alloc.id, 'web-g-0000', 'placed at the same time: the smaller id')
  // void claims hold nothing
  t.equal(
    settle(claimsOf([], [state(a, 'rejected', 'full')]).values(), alive, false, ready).size,
    0,
    'rejected',
  )
  t.equal(
    settle(claimsOf([{ owner: 'x', alloc: a }], []).values(), new Set(), false, ready).size,
    0,
    'dead host',
  )
  t.equal(
    settle(claimsOf([], [state(a, 'complete')]).values(), alive, false, ready).size,
    0,
    'a finished service',
  )
  t.equal(
    settle(claimsOf([], [state(a, 'complete')]).values(), alive, true, ready).size,
    1,
    'a finished batch slot',
  )
})

t.test('admission: in the agreed order, up to the host’s own capacity', async (t) => {
  const total = { cpu: 1000, memoryMb: 1024 }
  const running = state(
    alloc({ id: 'old-g-1', host: 'peer-h1', resources: { cpu: 600, memoryMb: 64 } }),
    'running',
  )
  const late = alloc({
    id: 'web-g-late',
    host: 'peer-h1',
    createdAt: 2000,
    resources: { cpu: 300, memoryMb: 64 },
  })
  const early = alloc({
    id: 'web-g-early',
    host: 'peer-h1',
    createdAt: 1000,
    resources: { cpu: 300, memoryMb: 64 },
  })
  const r = admit({ total, eligible: true, states: [running], offered: [late, early] })
  t.same(
    r.admitted.map((a) => a.id),
    ['web-g-early'],
    'the older offer gets the last 400m',
  )
  t.same(r.rejected, [{ alloc: late, reason: 'cpu: needs 300m, 100m free' }])
  t.same(r.used, { cpu: 900, memoryMb: 128 })
  const mem = admit({
    total,
    eligible: true,
    states: [],
    offered: [alloc({ id: 'big-g-1', host: 'peer-h1', resources: { cpu: 1, memoryMb: 2048 } })],
  })
  t.equal(mem.rejected[0]?.reason, 'memory: needs 2048 MiB, 1024 MiB free')
  const drained = admit({ total, eligible: false, states: [], offered: [early] })
  t.equal(drained.rejected[0]?.reason, 'host is draining')
  const ended = state(
    alloc({ id: 'done-g-1', host: 'peer-h1', resources: { cpu: 1000, memoryMb: 64 } }),
    'failed',
  )
  t.equal(
    admit({ total, eligible: true, states: [ended], offered: [early] }).admitted.length,
    1,
    'ended allocations free their share',
  )
})

const hosts = [host('h1', { zone: 'a' }), host('h2', { zone: 'a' }), host('h3', { zone: 'b' })]
const webJob = (count: number, extra: Partial<JobValue> = {}): JobValue => ({
  spec: job([group('g', count, { constraints: [{ operator: 'distinct_hosts' }] })], { name: 'web' }),
  version: 1,
  submittedAt: '2026-12-02T00:00:00Z',
  stopped: false,
  ...extra,
})
const claimsFrom = (
  allocs: { owner: string; alloc: AllocValue }[],
  states: AllocStateValue[] = [],
): Claim[] => [...claimsOf(allocs, states).values()]

t.test('owner plan: a new job gets every slot, a second pass writes nothing', async (t) => {
  const first = ownerPlan({ self: 'peer-h1', job: webJob(3), hosts, claims: [], now: 5000 })
  t.equal(first.puts.length, 3, 'three slots placed')
  t.same(first.puts.map((a) => a.host).sort(), ['peer-h1', 'peer-h2', 'peer-h3'], 'distinct hosts')
  t.ok(first.puts.every((a) => a.createdAt === 5000 && a.jobVersion === 1 && a.resources.cpu === 100))
  t.equal(new Set(first.puts.map((a) => a.id)).size, 3, 'ids unique')
  t.same(first.deletes, [])
  const again = ownerPlan({
    self: 'peer-h1',
    job: webJob(3),
    hosts,
    claims: claimsFrom(first.puts.map((alloc) => ({ owner: 'peer-h1', alloc }))),
    now: 6000,
  })
  t.same(again.puts, [], 'nothing to write')
  t.same(again.deletes, [])
  t.equal(again.plan, undefined, 'no placement run when every slot holds')
})

t.test(
  'owner plan: a new owner adopts running slots from their hosts’ states, re-places the dead host’s',
  async (t) => {
    const placed = [
      alloc({ id: 'web-g-0', slot: '0', host: 'peer-h1' }),
      alloc({ id: 'web-g-1', slot: '1', host: 'peer-h2' }),
      alloc({ id: 'web-g-2', slot: '2', host: 'peer-h3' }),
    ]
    // the old owner h3 died: its alloc records are hidden, h1 and h2 still report theirs
    const dead3 = [hosts[0], hosts[1], { ...(hosts[2] as (typeof hosts)[0]), alive: false }] as typeof hosts
    const extra = host('h4', { zone: 'a' })
    const plan = ownerPlan({
      self: 'peer-h1',
      job: webJob(3),
      hosts: [...dead3, extra],
      claims: claimsFrom(
        [],
        [state(placed[0] as AllocValue, 'running'), state(placed[1] as AllocValue, 'running')],
      ),
      now: 9000,
    })
    const byId = new Map(plan.puts.map((a) => [a.id, a]))
    t.equal(byId.get('web-g-0')?.host, 'peer-h1', 'slot 0 adopted where it runs, same id')
    t.equal(byId.get('web-g-1')?.host, 'peer-h2', 'slot 1 adopted')
    const fresh = plan.puts.find((a) => a.slot === '2')
    t.equal(fresh?.host, 'peer-h4', 'slot 2 placed again on the only host left (distinct hosts)')
    t.equal(fresh?.createdAt, 9000)
    t.notOk('status' in (byId.get('web-g-0') ?? {}), 'an adopted record carries alloc fields only')
  },
)

t.test('owner plan: duplicates after a heal, scale down, rejection, stop', async (t) => {
  const mine = alloc({ id: 'web-g-mine', slot: '0', host: 'peer-h1', createdAt: 2000 })
  const theirs = alloc({ id: 'web-g-theirs', slot: '0', host: 'peer-h2', createdAt: 1000 })
  const healed = ownerPlan({
    self: 'peer-h1',
    job: webJob(1),
    hosts,
    claims: claimsFrom(
      [
        { owner: 'peer-h1', alloc: mine },
        { owner: 'peer-h2', alloc: theirs },
      ],
      [state(mine, 'running'), state(theirs, 'running')],
    ),
    now: 9000,
  })
  t.same(healed.puts, [], 'its own, later placement stands')
  t.same(healed.deletes, [])
  const adopt = ownerPlan({
    self: 'peer-h1',
    job: webJob(1),
    hosts,
    claims: claimsFrom(
      [
        { owner: 'peer-h1', alloc: { ...mine, createdAt: 500 } },
        { owner: 'peer-h2', alloc: theirs },
      ],
      [state({ ...mine, createdAt: 500 }, 'running'), state(theirs, 'running')],
    ),
    now: 9000,
  })
  t.same(
    adopt.puts.map((a) => a.id),
    ['web-g-theirs'],
    "another owner's later placement is adopted",
  )
  t.same(adopt.deletes, [], 'own record for the slot is overwritten by the adopted one, not deleted')

  const two = [
    alloc({ id: 'web-g-0', slot: '0', host: 'peer-h1' }),
    alloc({ id: 'web-g-1', slot: '1', host: 'peer-h2' }),
  ]
  const down = ownerPlan({
    self: 'peer-h1',
    job: webJob(1),
    hosts,
    claims: claimsFrom(two.map((alloc) => ({ owner: 'peer-h1', alloc }))),
    now: 9000,
  })
  t.same(down.deletes, ['g/1'], 'scaled to 1: slot 1 goes')
  t.same(down.puts, [])

  const refused = alloc({ id: 'web-g-r', slot: '0', host: 'peer-h1' })
  const full = [host('h1', { zone: 'a', usedCpu: 3950 }), hosts[1], hosts[2]] as typeof hosts
  const replaced = ownerPlan({
    self: 'peer-h1',
    job: webJob(1),
    hosts: full,
    claims: claimsFrom([{ owner: 'peer-h1', alloc: refused }], [state(refused, 'rejected', 'cpu')]),
    now: 9000,
  })
  t.equal(replaced.puts.length, 1, 'a rejected slot is placed again')
  t.not(replaced.puts[0]?.host, 'peer-h1', 'not on the host that refused it')

  const stopped = ownerPlan({
    self: 'peer-h1',
    job: webJob(2, { stopped: true }),
    hosts,
    claims: claimsFrom(two.map((alloc) => ({ owner: 'peer-h1', alloc }))),
    now: 9000,
  })
  t.same(stopped.deletes, ['g/0', 'g/1'], 'a stopped job loses every record')
  t.same(stopped.puts, [])
})

t.test('owner plan: a system job follows its hosts', async (t) => {
  const sys: JobValue = { ...webJob(1), spec: job([group('agent', 1)], { name: 'mon', type: 'system' }) }
  const first = ownerPlan({ self: 'peer-h1', job: sys, hosts, claims: [], now: 1 })
  t.same(
    first.puts.map((a) => a.slot).sort(),
    ['peer-h1', 'peer-h2', 'peer-h3'],
    'one per host, keyed by host',
  )
  const joined = ownerPlan({
    self: 'peer-h1',
    job: sys,
    hosts: [...hosts, host('h4')],
    claims: claimsFrom(first.puts.map((alloc) => ({ owner: 'peer-h1', alloc }))),
    now: 2,
  })
  t.same(
    joined.puts.map((a) => a.host),
    ['peer-h4'],
    'only the new host gets one',
  )
})

t.test('placement keeps kept slots where they are and places around them', async (t) => {
  const talking = job([group('db', 1), group('api', 1, { talksTo: [{ service: 'db', weight: 10 }] })])
  const zoned = [host('h1', { zone: 'a' }), host('h2', { zone: 'b' }), host('h3', { zone: 'b' })]
  const free = place(input(talking, zoned))
  const dbHost = free.placements.find((p) => p.group === 'db')?.host
  const kept = place({ ...input(talking, zoned), keep: [{ group: 'db', index: 0, host: 'peer-h1' }] })
  t.equal(kept.placements.find((p) => p.group === 'db')?.host, 'peer-h1', 'db stays on h1')
  t.equal(kept.placements.find((p) => p.group === 'api')?.host, 'peer-h1', 'api joins it there')
  t.ok(dbHost, 'unkept, db is placed somewhere')
})
