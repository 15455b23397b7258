import t from 'tap'
import { RESOURCES, touched } from '../../../src/ui/model/live.js'
import { rttColour, rttRange, zoneOf } from '../../../src/ui/model/rtt.js'

t.test('a store change re-reads the views its key feeds, and the KV browser', async (t) => {
  t.same([...touched('nodes/12D3KooWabc')].sort(), ['hosts', 'kv'])
  t.same([...touched('leases/12D3KooWabc')].sort(), ['hosts', 'kv', 'subnets'])
  t.same([...touched('endpoints/p/c1/eth0')].sort(), ['endpoints', 'kv', 'links', 'services'])
  t.same([...touched('allocstate/p/web-1')].sort(), ['allocs', 'jobs', 'kv'])
  t.same([...touched('config/drain/h1')].sort(), ['hosts', 'kv'])
  t.same([...touched('app/some/key')], ['kv'])
  t.same([...touched(undefined)].sort(), [...RESOURCES].sort(), 'a reset re-reads everything')
})

t.test('RTT colours run green to red between the scale ends; unknown is grey', async (t) => {
  t.equal(rttColour(0.2, 0.5, 10), 'hsl(130, 70%, 38%)')
  t.equal(rttColour(50, 0.5, 10), 'hsl(0, 70%, 38%)')
  t.equal(rttColour(null, 0.5, 10), '#8a8f98')
  t.same(rttRange([null, null]), [0, 1])
  // one outlier does not flatten the scale
  const xs = [...Array.from({ length: 99 }, (_, i) => i / 10), 5000]
  t.ok(rttRange(xs)[1] < 11)
  t.equal(zoneOf({ 'topology.kubernetes.io/zone': 'z1', zone: 'z2' }), 'z1')
  t.equal(zoneOf({ zone: 'z2' }), 'z2')
  t.equal(zoneOf({}), undefined)
})
