// job explain/rebalance: the network cost where a job runs and placed afresh, the moves between
// them, and the owner replacing the allocations a rebalance marked (as it replaces a drained host's).
import t from 'tap'
import { ownerPlan } from '../../../src/scheduler/owner-plan.js'
import { MIN_GAIN, type RunningSlot, rebalance } from '../../../src/scheduler/rebalance.js'
import type { AllocValue, JobValue } from '../../../src/scheduler/records.js'
import { claimsOf } from '../../../src/scheduler/settle.js'
import { group, host, job } from './fixtures.js'

// Vivaldi coordinates (seconds) 20 ms apart between the zones, as the agents publish them
const hosts = ['a', 'a', 'b', 'b'].map((z, i) => ({
  ...host(`h${i + 1}`, { zone: z }),
  coordinate: { vec: [z === 'a' ? 0 : 0.02, 0], height: 0.0001, error: 0.1, adjustment: 0 },
}))
const spec = job(
  [
    group('db', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'b' }] }),
    group('api', 2, {
      talksTo: [{ service: 'db', weight: 10 }],
      constraints: [{ operator: 'distinct_hosts' }],
    }),
  ],
  { name: 'shop' },
)
const slot = (id: string, g: string, s: string, h: string): RunningSlot => ({
  id,
  group: g,
  slot: s,
  host: `peer-${h}`,
  hostName: h,
  resources: { cpu: 100, memoryMb: 64 },
})

t.test('a job placed far from its partner: the cost now, afresh, and which allocations move', async (t) => {
  const far = [slot('db0', 'db', '0', 'h3'), slot('api0', 'api', '0', 'h1'), slot('api1', 'api', '1', 'h4')]
  const r = rebalance({ job: spec, hosts, others: [], traffic: [], running: far })
  t.ok(
    r.costNow > 0 && r.costAfter < r.costNow * (1 - MIN_GAIN),
    `cost ${r.costNow} now, ${r.costAfter} afresh`,
  )
  t.same(
    r.moves.map((m) => [m.id, m.from, ['h3', 'h4'].includes(m.to)]),
    [['api0', 'h1', true]],
    'only the api allocation in zone a moves, into zone b',
  )
  t.ok(r.plan.groups.find((g) => g.group === 'api')?.hosts.length, 'every host has its verdict for api')
})

t.test('a job placed well moves nothing', async (t) => {
  const near = [slot('db0', 'db', '0', 'h3'), slot('api0', 'api', '0', 'h3'), slot('api1', 'api', '1', 'h4')]
  const r = rebalance({ job: spec, hosts, others: [], traffic: [], running: near })
  t.same(r.moves, [])
  t.equal(r.costAfter, r.costNow)
})

t.test('the owner replaces a marked allocation beside it, and only that one', async (t) => {
  const a = (id: string, g: string, s: string, h: string): AllocValue => ({
    id,
    job: 'shop',
    jobVersion: 1,
    group: g,
    slot: s,
    host: `peer-${h}`,
    hostName: h,
    resources: { cpu: 100, memoryMb: 64 },
    createdAt: 1000,
  })
  const records = [a('db0', 'db', '0', 'h3'), a('api0', 'api', '0', 'h1'), a('api1', 'api', '1', 'h4')]
  const states = records.map((r) => ({ ...r, status: 'running' as const, updatedAt: 1000 }))
  const value = (rebalanceMarks?: { alloc: string; to: string }[]): JobValue => ({
    spec,
    version: 1,
    submittedAt: '2026-12-04T00:00:00Z',
    stopped: false,
    ...(rebalanceMarks ? { rebalance: { at: '2026-12-04T00:00:01Z', moves: rebalanceMarks } } : {}),
  })
  const plan = (j: JobValue) =>
    ownerPlan({
      self: 'peer-h1',
      job: j,
      hosts,
      live: new Set(hosts.map((h) => h.id)),
      claims: claimsOf(
        records.map((alloc) => ({ owner: 'peer-h1', alloc })),
        states,
      ).values(),
      now: 10_000,
    })
  t.same(plan(value()).puts, [], 'unmarked: nothing to do')
  const moved = plan(value([{ alloc: 'api0', to: 'peer-h4' }]))
  t.equal(moved.puts.length, 1, 'one replacement')
  t.match(moved.puts[0], { group: 'api', slot: '0', replaces: 'api0', hostName: 'h4' }, 'on the planned host')
  const gone = plan(value([{ alloc: 'api0', to: 'peer-h9' }]))
  t.ok(
    ['h3', 'h4'].includes(gone.puts[0]?.hostName ?? ''),
    `a planned host that is not there: placement picks (${gone.puts[0]?.hostName})`,
  )
})

t.test('a pair that must move together: web and api both leave zone a', async (t) => {
  const chain = job(
    [
      group('db', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'b' }] }),
      group('api', 1, { talksTo: [{ service: 'db', weight: 10 }] }),
      group('web', 1, { talksTo: [{ service: 'api', weight: 10 }] }),
    ],
    { name: 'shop' },
  )
  // one move alone saves nothing (api to b: web's calls cross instead), both together save it all
  const running = [
    slot('db0', 'db', '0', 'h3'),
    slot('api0', 'api', '0', 'h1'),
    slot('web0', 'web', '0', 'h1'),
  ]
  const r = rebalance({ job: chain, hosts, others: [], traffic: [], running })
  t.same(r.moves.map((m) => [m.id, m.from, m.to.replace(/h[34]/, 'b')]).sort(), [
    ['api0', 'h1', 'b'],
    ['web0', 'h1', 'b'],
  ])
  t.ok(r.costAfter < r.costNow / 10, `cost ${r.costNow} -> ${r.costAfter}`)
})
