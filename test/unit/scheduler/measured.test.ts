// Measured traffic as placement input: the pairs no talksTo declares become edges, weighted
// relative to the job's busiest pair; declared weights win; a job without talksTo lands next to
// the services it has been measured talking to.
import t from 'tap'
import { measuredTalks } from '../../../src/scheduler/placement/problem.js'
import { place } from '../../../src/scheduler/placement/solver.js'
import { group, host, hostsOf, input, job } from './fixtures.js'

const byName = (names: string[]) => new Map(names.map((n, i) => [n, i]))

t.test('measured pairs become edges where nothing is declared', async (t) => {
  const j = job([group('web', 1), group('api', 1), group('db', 1)])
  const talks = measuredTalks(j, byName(['web', 'api', 'db']), [
    { from: 'web', to: 'api', bytesPerSec: 1000 },
    { from: 'api', to: 'web', bytesPerSec: 200 },
    { from: 'api', to: 'db', bytesPerSec: 600 },
    { from: 'web', to: 'db', bytesPerSec: 5 },
    { from: 'api', to: 'cache', bytesPerSec: 300 },
  ])
  t.same(talks, [
    // both directions of web<->api are one exchange, from the lower group's side
    { group: 0, service: 'api', weight: 1 },
    { group: 1, service: 'db', weight: 0.5 },
    { group: 1, service: 'cache', weight: 0.25 },
  ])
})

t.test('a declared talksTo wins over what was measured, either side', async (t) => {
  const j = job([
    group('web', 1, { talksTo: [{ service: 'api', weight: 3 }] }),
    group('api', 1),
    group('db', 1, { talksTo: [{ service: 'api' }] }),
  ])
  const talks = measuredTalks(j, byName(['web', 'api', 'db']), [
    { from: 'web', to: 'api', bytesPerSec: 1000 },
    { from: 'api', to: 'db', bytesPerSec: 10 },
    { from: 'web', to: 'db', bytesPerSec: 50 },
  ])
  t.same(talks, [{ group: 0, service: 'db', weight: 1 }], 'only web<->db, which nobody declared')
})

t.test('noise under 1 % of the busiest pair is left out', async (t) => {
  const talks = measuredTalks(job([group('a', 1), group('b', 1), group('c', 1)]), byName(['a', 'b', 'c']), [
    { from: 'a', to: 'b', bytesPerSec: 10_000 },
    { from: 'a', to: 'c', bytesPerSec: 50 },
  ])
  t.same(
    talks.map((x) => x.service),
    ['b'],
  )
})

t.test('a job without talksTo lands where its measured partners are', async (t) => {
  const hosts = ['a', 'a', 'a', 'b', 'b', 'b'].map((z, i) => host(`h${i + 1}`, { zone: z, cpu: 2000 }))
  const j = job([
    group(
      'db',
      3,
      {
        constraints: [{ operator: '=', attribute: 'zone', value: 'b' }, { operator: 'distinct_hosts' }],
      },
      500,
    ),
    group('api', 1, {}, 500),
    group('web', 1, {}, 500),
  ])
  const zoneOf = (n: string) => hosts.find((h) => h.name === n)?.labels.zone
  const spread = place(input(j, hosts))
  t.same(
    [...hostsOf(spread, 'api'), ...hostsOf(spread, 'web')].map(zoneOf),
    ['a', 'a'],
    'unmeasured: the least busy hosts, in zone a',
  )
  const measured = place(
    input(j, hosts, {
      traffic: [
        { from: 'web', to: 'api', bytesPerSec: 900 },
        { from: 'api', to: 'db', bytesPerSec: 400 },
      ],
    }),
  )
  t.same(
    [...hostsOf(measured, 'api'), ...hostsOf(measured, 'web')].map(zoneOf),
    ['b', 'b'],
    'measured: next to db in zone b',
  )
})
