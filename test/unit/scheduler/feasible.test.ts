// A job no host could ever take is refused at submission with every reason; one that only waits
// for room is not.
import t from 'tap'
import { unplaceable } from '../../../src/scheduler/feasible.js'
import { group, host, job } from './fixtures.js'

const hosts = [host('h1', { zone: 'a', cpu: 2000 }), host('h2', { zone: 'b', cpu: 2000 })]

t.test('every group that cannot be placed, each with its reason', async (t) => {
  const reasons = unplaceable(
    job([
      group('db', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'c' }] }),
      group('api', 3, { constraints: [{ operator: 'distinct_hosts' }] }),
      group('big', 1, {}, 5000),
      group('ok', 2),
    ]),
    hosts,
  )
  t.equal(reasons.length, 3, reasons.join('\n'))
  t.match(reasons[0], /^group db: 1 of 1 slots .*constraint 2/)
  t.match(reasons[1], /^group api: 1 of 3 slots .*distinct_hosts/)
  t.match(reasons[2], /^group big: 1 of 1 slots .*capacity/)
})

t.test('a job larger than the cluster', async (t) => {
  const reasons = unplaceable(job([group('web', 5, {}, 900)]), hosts)
  t.match(reasons, [/^group web: 1 of 5 slots .*capacity/])
})

t.test(
  'what only waits for room is accepted: busy hosts, a host without capacity yet, a system job',
  async (t) => {
    const busy = hosts.map((h) => ({ ...h, used: { cpu: 2000, memoryMb: 8192 }, alive: false }))
    t.same(unplaceable(job([group('web', 2, {}, 900)]), busy), [], 'busy or not alive now')
    const fresh = [...hosts, { ...host('h3', { zone: 'c' }), capacity: { cpu: 0, memoryMb: 0 } }]
    t.same(
      unplaceable(
        job([group('db', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'c' }] }, 9000)]),
        fresh,
      ),
      [],
      'a host that has not advertised its capacity may take it',
    )
    t.same(
      unplaceable(
        job([group('agent', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'z' }] })], {
          type: 'system',
        }),
        hosts,
      ),
      [],
      'a system job runs on the hosts that join later',
    )
    t.same(unplaceable(job([group('web', 2)]), []), [], 'no member known yet')
  },
)

t.test('a named network no host holds a lease of yet is waited for, not refused', async (t) => {
  const unleased = hosts.map((h) => ({ ...h, networks: [] }))
  t.same(unplaceable(job([group('web', 1, { networks: ['blue'] })]), unleased), [])
})
