// Rolling updates and drains: a slot's allocation is replaced by a new one
// brought up beside it, which takes the slot only once healthy, at most
// update.maxParallel of a group at a time; a failing replacement stops the
// rollout and the old instances keep serving.
import t from 'tap'
import { ownerPlan } from '../../../src/scheduler/owner-plan.js'
import type { AllocStateValue, AllocStatus, AllocValue, JobValue } from '../../../src/scheduler/records.js'
import { revertTarget } from '../../../src/scheduler/revert.js'
import { claimsOf, healthGate, passingSince, settle } from '../../../src/scheduler/settle.js'
import type { GroupSpec } from '../../../src/scheduler/spec.js'
import { group, host, job } from './fixtures.js'

const hosts = [host('h1'), host('h2'), host('h3')]
const update: GroupSpec['update'] = { maxParallel: 1, minHealthyMs: 5000 }
const web = (version: number, maxParallel = 1): JobValue => ({
  spec: job([group('g', 2, { update: { ...update, maxParallel } })], { name: 'web' }),
  version,
  submittedAt: '2026-12-02T00:00:00Z',
  stopped: false,
})
const alloc = (
  id: string,
  slot: string,
  h: string,
  version: number,
  extra: Partial<AllocValue> = {},
): AllocValue => ({
  id,
  job: 'web',
  jobVersion: version,
  group: 'g',
  slot,
  host: `peer-${h}`,
  hostName: h,
  resources: { cpu: 100, memoryMb: 64 },
  createdAt: 1000,
  ...extra,
})
const st = (a: AllocValue, status: AllocStatus, at: number): AllocStateValue => ({
  ...a,
  status,
  updatedAt: at,
})
const owned = (...as: AllocValue[]) => as.map((alloc) => ({ owner: 'peer-h1', alloc }))
const plan = (
  j: JobValue,
  now: number,
  records: AllocValue[],
  states: AllocStateValue[],
  hs = hosts,
  drained = new Set<string>(),
) =>
  ownerPlan({
    self: 'peer-h1',
    job: j,
    hosts: hs,
    live: new Set(hosts.map((h) => h.id)),
    drained,
    claims: claimsOf(owned(...records), states).values(),
    now,
  })

const a0 = alloc('web-g-a0', '0', 'h1', 1)
const a1 = alloc('web-g-a1', '1', 'h2', 1)
const running = [st(a0, 'running', 1000), st(a1, 'running', 1000)]

t.test('rolling update: one at a time, each healthy for minHealthyMs before the next', async (t) => {
  const first = plan(web(2), 10_000, [a0, a1], running)
  t.equal(first.puts.length, 1, 'one replacement (maxParallel 1)')
  const r0 = first.puts[0] as AllocValue
  t.match(r0, { slot: '0', jobVersion: 2, replaces: a0.id }, 'slot 0 first, naming what it replaces')
  t.same(first.deletes, [], 'its record takes the slot key; nothing deleted')

  const admitted = [...running, st(r0, 'admitted', 10_500)]
  const bringing = plan(web(2), 11_000, [r0, a1], admitted)
  t.same(bringing.puts, [], 'nothing more while it is brought up')
  t.same(bringing.deletes, [])
  const v = bringing.verdicts.get('g/0')
  t.equal(v?.winner.alloc.id, a0.id, 'the old allocation keeps the slot')
  t.equal(v?.incoming?.alloc.id, r0.id, 'the replacement runs beside it')
  t.same(v?.losers, [], 'neither is stopped')

  const young = [...running, st(r0, 'running', 12_000)]
  t.same(plan(web(2), 16_999, [r0, a1], young).puts, [], 'running 4.999 s: not yet healthy')

  const healthy = plan(web(2), 17_000, [r0, a1], young)
  const g0 = healthy.verdicts.get('g/0')
  t.equal(g0?.winner.alloc.id, r0.id, 'healthy for 5 s: it takes the slot')
  t.same(
    g0?.losers.map((c) => c.alloc.id),
    [a0.id],
    'the old one loses it (its host stops it)',
  )
  t.equal(healthy.puts.length, 1, 'and the next slot is replaced')
  t.match(healthy.puts[0], { slot: '1', jobVersion: 2, replaces: a1.id })
})

t.test('rolling update: maxParallel 2 replaces both at once', async (t) => {
  const p = plan(web(2, 2), 10_000, [a0, a1], running)
  t.same(p.puts.map((a) => [a.slot, a.replaces]).sort(), [
    ['0', a0.id],
    ['1', a1.id],
  ])
})

t.test('rolling update: a failing replacement stops the rollout, the old instance serves on', async (t) => {
  const r0 = alloc('web-g-r0', '0', 'h3', 2, { replaces: a0.id, createdAt: 10_000 })
  const p = plan(web(2), 13_500, [r0, a1], [...running, st(r0, 'failed', 13_000)])
  t.same(p.puts, [], 'no other slot replaced, the failed one not at once')
  t.same(p.deletes, [], 'the failed replacement stays on record')
  t.equal(p.verdicts.get('g/0')?.winner.alloc.id, a0.id, 'slot 0 still held by the old version')
  t.ok(p.deferred.get('g/0')?.until, 'the failed slot waits out its reschedule delay')
  const later = plan(web(2), 13_000 + 30_000, [r0, a1], [...running, st(r0, 'failed', 13_000)])
  t.equal(later.puts.length, 1, 'after the delay it is tried again')
  t.match(later.puts[0], { slot: '0', replaces: a0.id, reschedule: { attempt: 1, since: 13_000 } })
})

t.test('drain: the allocations of a drained host move, the new one first', async (t) => {
  // a drained host takes no placements (not alive to placement) and its capacity record says so
  const closed = [host('h1', { alive: false }), host('h2'), host('h3')]
  const p = plan(web(1), 10_000, [a0, a1], running, closed, new Set(['peer-h1']))
  t.equal(p.puts.length, 1, 'one move')
  t.match(p.puts[0], { slot: '0', replaces: a0.id, jobVersion: 1 })
  t.not(p.puts[0]?.host, 'peer-h1', 'off the drained host')
  const nothing = plan(web(1), 10_000, [a0, a1], running)
  t.same([nothing.puts, nothing.deletes], [[], []], 'undrained: nothing moves')
  const suspect = plan(web(1), 10_000, [a0, a1], running, closed)
  t.same(
    [suspect.puts, suspect.deletes],
    [[], []],
    'a host only unable to take placements (suspect) keeps its own',
  )
})

t.test('settle: every host reaches the same verdict on a replacement', async (t) => {
  const r0 = alloc('web-g-r0', '0', 'h3', 2, { replaces: a0.id, createdAt: 10_000 })
  const claims = () => claimsOf(owned(r0, a1), [...running, st(r0, 'running', 12_000)]).values()
  const alive = new Set(hosts.map((h) => h.id))
  const early = settle(claims(), alive, false, healthGate(web(2), 14_000)).get('g/0')
  t.same([early?.winner.alloc.id, early?.incoming?.alloc.id], [a0.id, r0.id])
  const late = settle(claims(), alive, false, healthGate(web(2), 17_000)).get('g/0')
  t.same([late?.winner.alloc.id, late?.incoming], [r0.id, undefined])
  const gone = settle(claims(), new Set(['peer-h2', 'peer-h3']), false, healthGate(web(2), 14_000)).get('g/0')
  t.equal(gone?.winner.alloc.id, r0.id, 'the old host dead: the replacement holds alone, healthy or not')
})

t.test(
  'a group with checks: a replacement takes over once every check has passed for minHealthyMs',
  async (t) => {
    const checked: JobValue = {
      ...web(2),
      spec: job(
        [
          group('g', 2, {
            update,
            service: {
              name: 'web',
              checks: [
                { name: 'up', type: 'tcp', port: 80 },
                { name: 'ready', type: 'exec', command: ['true'] },
              ],
            },
          }),
        ],
        { name: 'web' },
      ),
    }
    const r0 = alloc('web-g-r0', '0', 'h3', 2, { replaces: a0.id, createdAt: 10_000 })
    const claims = () => claimsOf(owned(r0, a1), [...running, st(r0, 'running', 12_000)]).values()
    const alive = new Set(hosts.map((h) => h.id))
    const result = (check: string, at: number, status = 'passing', host = 'peer-h3') => ({
      endpointKey: `endpoints/${host}/${r0.id}/eth0`,
      service: 'web',
      check,
      status,
      at,
    })
    const winner = (now: number, results: ReturnType<typeof result>[]) =>
      settle(claims(), alive, false, healthGate(checked, now, passingSince(results))).get('g/0')?.winner.alloc
        .id
    t.equal(winner(60_000, []), a0.id, 'running long enough, no check passed: the old one keeps the slot')
    t.equal(winner(60_000, [result('up', 13_000)]), a0.id, 'one check of two')
    t.equal(
      winner(60_000, [result('up', 13_000), result('ready', 13_000, 'critical')]),
      a0.id,
      'one critical',
    )
    t.equal(
      winner(60_000, [result('up', 13_000), result('ready', 14_000, 'passing', 'peer-h1')]),
      a0.id,
      "another host's endpoint",
    )
    const both = [result('up', 13_000), result('ready', 20_000)]
    t.equal(winner(24_000, both), a0.id, 'passing for 4 s of 5')
    t.equal(winner(25_000, both), r0.id, 'passing for minHealthyMs: the replacement takes the slot')
    t.equal(
      settle(claims(), alive, false, healthGate(web(2), 17_000, passingSince([]))).get('g/0')?.winner.alloc
        .id,
      r0.id,
      'a group without checks: running for minHealthyMs, as before',
    )
  },
)

t.test(
  'a replacement superseded before it was healthy loses; the slot is replaced for the current version',
  async (t) => {
    const r0 = alloc('web-g-r0', '0', 'h3', 2, { replaces: a0.id, createdAt: 10_000 })
    const claims = () => claimsOf(owned(r0, a1), [...running, st(r0, 'running', 12_000)]).values()
    const alive = new Set(hosts.map((h) => h.id))
    const v = settle(claims(), alive, false, healthGate(web(3), 12_500), 3).get('g/0')
    t.same(
      [v?.winner.alloc.id, v?.incoming, v?.losers.map((c) => c.alloc.id)],
      [a0.id, undefined, [r0.id]],
      'version 3 came: the version-2 replacement is stopped, the old one keeps the slot',
    )
    const p = plan(web(3), 12_500, [r0, a1], [...running, st(r0, 'running', 12_000)])
    const put = p.puts.find((a) => a.slot === '0' && a.jobVersion === 3)
    t.equal(put?.replaces, a0.id, 'and a version-3 allocation replaces it')
  },
)

t.test('autoRevert: a failed or late replacement reverts to the version it replaces', async (t) => {
  const j = (autoRevert = true, keep = true): JobValue => ({
    ...web(2),
    spec: job([group('g', 2, { update: { ...update, healthyDeadlineMs: 5000, autoRevert } })], {
      name: 'web',
    }),
    ...(keep ? { history: [{ version: 1, spec: web(1).spec, submittedAt: 't1' }] } : {}),
  })
  const r0 = alloc('web-g-r0', '0', 'h3', 2, { replaces: a0.id, createdAt: 10_000 })
  const target = (jv: JobValue, now: number, status: AllocStatus) => {
    const claims = [...claimsOf(owned(r0, a1), [...running, st(r0, status, 11_000)]).values()]
    const verdicts = settle(claims, new Set(hosts.map((h) => h.id)), false, healthGate(jv, now), jv.version)
    return revertTarget(jv, claims, verdicts, now)
  }
  t.equal(target(j(), 14_000, 'running')?.to.version, undefined, 'coming up within its deadline')
  const late = target(j(), 15_001, 'running')
  t.equal(late?.to.version, 1, 'not healthy 5 s after it was placed: back to version 1')
  t.match(late?.reason, /not healthy within 5000 ms/)
  const failed = target(j(), 11_000, 'failed')
  t.equal(failed?.to.version, 1, 'failed for good: back to version 1')
  t.match(failed?.reason, /failed/)
  t.equal(target(j(false), 20_000, 'failed'), undefined, 'without autoRevert: stays')
  t.equal(target(j(true, false), 20_000, 'failed'), undefined, 'version 1 not in the history: stays')
  // version 2 is itself a revert to version 1's spec, and fails too: going back again would loop
  const same = j()
  const looped = { ...same, history: [{ version: 1, spec: same.spec, submittedAt: 't1' }] }
  t.equal(
    target(looped, 20_000, 'failed'),
    undefined,
    'the failing spec is the one it would go back to: stays',
  )
})

t.test('in place: an update replaces only the groups it changed', async (t) => {
  const two = (version: number, count = 2, history: JobValue['history'] = []): JobValue => ({
    spec: job([group('g', count, { update }), group('api', 1)], { name: 'web' }),
    version,
    submittedAt: 't',
    stopped: false,
    history,
  })
  const withEnv = (j: JobValue, env: string): JobValue => {
    const [g, api] = j.spec.groups as [GroupSpec, GroupSpec]
    const task = { ...(g.tasks[0] as GroupSpec['tasks'][0]), config: { command: ['true'], env: { V: env } } }
    return { ...j, spec: { ...j.spec, groups: [{ ...g, tasks: [task] }, api] } }
  }
  const v1 = withEnv(two(1), 'a')
  const b0 = alloc('web-api-b0', '0', 'h3', 1, { group: 'api' })
  const states = [...running, st(b0, 'running', 1000)]

  // version 2 changes g's environment only
  const v2 = withEnv(two(2, 2, [{ version: 1, spec: v1.spec, submittedAt: 't' }]), 'b')
  const p = plan(v2, 10_000, [a0, a1, b0], states)
  const replacing = p.puts.filter((a) => a.replaces)
  t.same(
    replacing.map((a) => [a.group, a.slot, a.replaces]),
    [['g', '0', a0.id]],
    'g is rolled (one at a time), api is not replaced',
  )
  t.match(
    p.puts.find((a) => a.id === b0.id),
    { jobVersion: 2, host: b0.host, slot: '0' },
    'api keeps its allocation, rewritten as version 2',
  )
  t.equal(p.verdicts.get('api/0')?.winner.alloc.id, b0.id)
  t.same(p.deletes, [])

  // once rewritten, the next pass leaves api alone
  const again = plan(v2, 11_000, [a0, a1, { ...b0, jobVersion: 2 }], states)
  t.notOk(
    again.puts.some((a) => a.group === 'api'),
    'nothing more to write for api',
  )

  // version 2 only scales g: nothing is replaced, one slot is added
  const scaled = withEnv(two(2, 3, [{ version: 1, spec: v1.spec, submittedAt: 't' }]), 'a')
  const s = plan(scaled, 10_000, [a0, a1, b0], states)
  t.same(
    s.puts.filter((a) => a.replaces),
    [],
    'a count change replaces nothing',
  )
  t.same(
    s.puts.filter((a) => a.jobVersion === 2 && ![a0.id, a1.id, b0.id].includes(a.id)).map((a) => a.slot),
    ['2'],
    'one new slot',
  )
  t.same(
    s.puts.filter((a) => [a0.id, a1.id, b0.id].includes(a.id)).map((a) => a.jobVersion),
    [2, 2, 2],
    'the running ones are version 2 in place',
  )

  // without the old version in the history, what it ran is unknown: replaced as before
  const unknown = withEnv(two(2), 'a')
  t.ok(
    plan(unknown, 10_000, [a0, a1, b0], states).puts.some((a) => a.replaces),
    'the old version is not in the history: rolled',
  )
})

t.test('in place: a revert keeps the old instances that never stopped serving', async (t) => {
  const v1 = web(1)
  const v2spec = job(
    [
      group('g', 2, {
        update,
        tasks: [{ ...(group('g', 1).tasks[0] as GroupSpec['tasks'][0]), config: { command: ['false'] } }],
      }),
    ],
    { name: 'web' },
  )
  const history = [
    { version: 1, spec: v1.spec, submittedAt: 't1' },
    { version: 2, spec: v2spec, submittedAt: 't2' },
  ]
  const v3: JobValue = { ...web(3), spec: v1.spec, history }
  // version 2's replacement of slot 0 failed; the revert is version 3 with version 1's spec
  const r0 = alloc('web-g-r0', '0', 'h3', 2, { replaces: a0.id, createdAt: 10_000 })
  const p = plan(v3, 12_000, [r0, a1], [...running, st(r0, 'failed', 11_000)])
  t.same(
    p.puts.filter((a) => a.replaces),
    [],
    'no replacement: the version-1 instances run version 3',
  )
  t.same(
    p.puts.map((a) => [a.id, a.jobVersion]).sort(),
    [
      [a0.id, 3],
      [a1.id, 3],
    ],
    'both kept in place, rewritten as version 3',
  )
})
