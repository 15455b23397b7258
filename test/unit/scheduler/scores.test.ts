import t from 'tap'
import { compileProblem } from '../../../src/scheduler/placement/problem.js'
import { dependencyOrder, place } from '../../../src/scheduler/placement/solver.js'
import { group, host, hostsOf, input, job, verdict } from './fixtures.js'

t.test('network: callers land next to the pinned data tier', async (t) => {
  const hosts = ['a', 'a', 'a', 'b', 'b', 'b'].map((z, i) => host(`h${i + 1}`, { zone: z, cpu: 1000 }))
  const j = job([
    group('web', 2, { talksTo: [{ service: 'api', weight: 5 }] }, 300),
    group('api', 2, { talksTo: [{ service: 'db', weight: 10 }] }, 300),
    group('db', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'b' }] }, 300),
  ])
  const plan = place(input(j, hosts))
  const zoneOf = (n: string) => hosts.find((h) => h.name === n)?.labels.zone
  t.same(
    plan.placements.map((p) => zoneOf(p.hostName)),
    ['b', 'b', 'b', 'b', 'b'],
  )
  t.same(
    plan.groups.map((g) => [g.group, g.order]),
    [
      ['web', 2],
      ['api', 1],
      ['db', 0],
    ],
  )
  const spread = place(input(j, hosts, { options: { network: false, rttMs: () => 1 } }))
  t.ok(
    spread.placements.some((p) => zoneOf(p.hostName) === 'a'),
    'without network scoring the job spreads over both zones',
  )
  const api = plan.groups.find((g) => g.group === 'api')
  const far = api?.hosts.find((h) => h.name === 'h1')?.scores
  const near = api?.hosts.filter((h) => zoneOf(h.name) === 'b').map((h) => h.scores?.network ?? 0)
  t.equal(far?.network, 0, 'the farthest host scores 0 on network')
  t.ok(
    near?.every((n) => n > 0.9),
    'hosts in the data zone score near 1',
  )
})

t.test('network: talksTo a service outside the job', async (t) => {
  const hosts = [host('h1', { zone: 'a' }), host('h2', { zone: 'b' }), host('h3', { zone: 'c' })]
  const plan = place(
    input(job([group('api', 1, { talksTo: [{ service: 'cache' }] })]), hosts, {
      allocations: [{ host: 'peer-h2', job: 'infra', group: 'cache', service: 'cache' }],
    }),
  )
  t.same(hostsOf(plan, 'api'), ['h2'])
})

t.test('balance: spread by default, binpack per job', async (t) => {
  const hosts = [host('h1', { usedCpu: 3000 }), host('h2', { usedCpu: 1000 }), host('h3', { usedCpu: 2000 })]
  t.same(hostsOf(place(input(job([group('g', 1)]), hosts)), 'g'), ['h2'])
  t.same(hostsOf(place(input(job([group('g', 1)], { balance: 'binpack' }), hosts)), 'g'), ['h1'])
  const plan = place(input(job([group('g', 1)]), hosts))
  const b = (n: string) => verdict(plan, 'g', n)?.scores?.balance ?? -1
  t.ok(b('h2') > b('h3') && b('h3') > b('h1'), 'balance ordered by free capacity')
})

t.test('affinity: soft, weighted, to labels and to services', async (t) => {
  const hosts = [host('h1', { labels: { gpu: 'yes' }, usedCpu: 2000 }), host('h2'), host('h3')]
  const toGpu = place(
    input(
      job([group('g', 1, { affinities: [{ attribute: 'labels.gpu', operator: 'exists', weight: 100 }] })]),
      hosts,
    ),
  )
  t.same(hostsOf(toGpu, 'g'), ['h1'], 'affinity beats balance')
  t.equal(verdict(toGpu, 'g', 'h1')?.scores?.affinity, 1)
  const away = place(
    input(
      job([group('g', 1, { affinities: [{ attribute: 'labels.gpu', operator: 'exists', weight: -100 }] })]),
      [host('h1', { labels: { gpu: 'yes' } }), host('h2', { usedCpu: 3000 })],
    ),
  )
  t.same(hostsOf(away, 'g'), ['h2'], 'negative weight avoids')
  const toService = place(
    input(job([group('g', 1, { affinities: [{ service: 'cache', weight: 80 }] })]), hosts, {
      allocations: [{ host: 'peer-h3', job: 'x', group: 'c', service: 'cache' }],
    }),
  )
  t.same(hostsOf(toService, 'g'), ['h3'])
  const impossible = place(
    input(
      job([group('g', 1, { affinities: [{ attribute: 'zone', operator: '=', value: 'nowhere' }] })]),
      hosts,
    ),
  )
  t.equal(impossible.placements.length, 1, 'an affinity nobody meets is soft: the slot is placed anyway')
})

t.test('spread: even over a label, or by targets', async (t) => {
  const hosts = ['a', 'a', 'a', 'b', 'b', 'b'].map((z, i) => host(`h${i + 1}`, { zone: z }))
  const count = (plan: ReturnType<typeof place>) => {
    const m: Record<string, number> = {}
    for (const p of plan.placements) {
      const z = hosts.find((h) => h.id === p.host)?.labels.zone as string
      m[z] = (m[z] ?? 0) + 1
    }
    return m
  }
  // binpack would pile everything on one host without the spread term
  const even = place(
    input(
      job([group('g', 4, { spread: [{ attribute: 'zone', weight: 100 }] })], { balance: 'binpack' }),
      hosts,
    ),
  )
  t.same(count(even), { a: 2, b: 2 })
  const targets = place(
    input(
      job(
        [
          group('g', 4, {
            spread: [
              {
                attribute: 'zone',
                weight: 100,
                targets: [
                  { value: 'a', percent: 75 },
                  { value: 'b', percent: 25 },
                ],
              },
            ],
          }),
        ],
        {
          balance: 'binpack',
        },
      ),
      hosts,
    ),
  )
  t.same(count(targets), { a: 3, b: 1 })
})

t.test('the same input gives the same plan', async (t) => {
  const hosts = Array.from({ length: 30 }, (_, i) => host(`h${i}`, { zone: 'abc'[i % 3] }))
  const j = job([
    group('web', 5, { talksTo: [{ service: 'api' }], spread: [{ attribute: 'zone' }] }),
    group('api', 4, { talksTo: [{ service: 'db' }] }),
    group('db', 2, { constraints: [{ operator: 'distinct_hosts' }] }),
  ])
  const a = place(input(j, hosts))
  const b = place(input(structuredClone(j), structuredClone(hosts)))
  t.same(a, b)
  t.ok(new Set(a.placements.map((p) => p.host)).size > 1, 'ties are not all broken toward one host')
})

t.test('dependency order: callees first, cycles broken in spec order', async (t) => {
  const hosts = [host('h1')]
  const order = (groups: ReturnType<typeof group>[]) =>
    dependencyOrder(compileProblem(job(groups), hosts, [], {})).map((i) => groups[i]?.name)
  t.same(
    order([
      group('web', 1, { talksTo: [{ service: 'api' }] }),
      group('api', 1, { talksTo: [{ service: 'db' }] }),
      group('db', 1),
    ]),
    ['db', 'api', 'web'],
  )
  t.same(
    order([group('a', 1, { talksTo: [{ service: 'b' }] }), group('b', 1, { talksTo: [{ service: 'a' }] })]),
    ['a', 'b'],
  )
})
