// A light pass started by a lease record (every host renews its lease every
// leaseRenewMs, and each renewal reaches every host) reads and writes nothing
// when the desired state is the one the last pass applied; a lease that
// changes it, and any other trigger, run the pass as before.
import t from 'tap'
import { backendFor } from '../../../src/datapath/backend/index.js'
import { sleep } from '../../../src/lib/proc.js'
import type { LeaseValue } from '../../../src/store/records.js'
import { nsExec } from './tempns.js'
import { hostSubnet, leaseRecord, topology } from './topology.js'

const PASSES = 'plexus_datapath_passes_total'

t.test('a renewed lease is not a pass; a changed lease and other triggers are', async (t) => {
  const topo = await topology(t, {
    hosts: 2,
    network: { Backend: { Type: 'vxlan' } },
    firewall: 'nftables',
    // no timer pass during the test: every pass below is one it started
    intervalMs: 600_000,
    endpoints: false,
  })
  const [h1, h2] = topo.hosts as [(typeof topo.hosts)[0], (typeof topo.hosts)[0]]
  const count = (result: string) => h1.metrics.value(PASSES, { result })
  const reach = async (result: string, n: number) => {
    for (let i = 0; i < 100 && (await count(result)) < n; i++) await sleep(50)
    return count(result)
  }
  const routes = () => nsExec(h1.ns.name, 'ip', ['route'])
  const ok = await count('ok')
  t.equal(await count('unchanged'), 0, 'no pass skipped yet')
  t.match(routes(), h2.subnet, "h1 routes to h2's subnet")

  // drift is a full pass's to find: a light pass that skips does not see it
  nsExec(h1.ns.name, 'ip', ['route', 'del', h2.subnet])
  topo.putLease(h2)
  h1.reconciler.trigger(0, false, true)
  t.equal(await reach('unchanged', 1), 1, "h2's renewal: the light pass found nothing to do")
  t.equal(await count('ok'), ok, 'and ran no pass')
  t.notMatch(routes(), h2.subnet, 'so it read nothing: the deleted route is still missing')

  h1.reconciler.trigger(0)
  t.equal(await reach('ok', ok + 1), ok + 1, 'a trigger that is not a lease record runs the pass')
  t.match(routes(), h2.subnet, 'which repairs the route')

  const h3 = hostSubnet(topo.network, 3)
  const value: LeaseValue = {
    subnet: h3,
    publicIp: '192.0.2.13',
    hostname: 'h3',
    backend: backendFor('vxlan').leaseData(topo.network, 'peer3'),
    claimedAt: 3,
  }
  topo.records.set('peer3', leaseRecord('peer3', value, 3_600_000))
  h1.reconciler.trigger(0, false, true)
  t.equal(await reach('ok', ok + 2), ok + 2, 'a lease that changes the desired state runs the pass')
  t.match(routes(), h3, "which programs the new host's route")
  t.equal(await count('unchanged'), 1, 'nothing else was skipped')
})
