import '../../../src/lib/polyfill.js'
import t from 'tap'
import { runScenario } from '../../../src/cluster/sim/scenario.js'

// 1,000 simulated hosts running the real store and replicator over a
// simulated network (seeded latency 5-40 ms, 1% loss): cold start, one write,
// a partition in halves with writes, deletes, crashes and an attacker on both
// sides, then heal. See src/cluster/sim/scenario.ts.
t.test('1,000 hosts: converge after heal, nothing forged merged, no resurrection', async (t) => {
  const started = Date.now()
  const r = await runScenario({ hosts: 1000, seed: 7 }, (s) => t.comment(s))
  t.comment(JSON.stringify(r))
  t.same(r.violations, [], 'every invariant holds')
  t.ok(r.converged, `all hosts hold the same map ${r.healMs} ms (simulated) after the heal`)
  t.ok(
    r.writeAllMs > 0 && r.writeAllMs <= 3000,
    `one write reaches all 1,000 hosts in ${r.writeAllMs} ms simulated`,
  )
  for (const reason of ['signature', 'not-owner', 'malformed']) {
    const k = `plexus_store_records_rejected_total{reason="${reason}"}`
    t.ok((r.rejected[k] ?? 0) > 0, `${k} counted`)
  }
  t.ok(
    (r.rejected['plexus_gossip_messages_total{reason="oversize",verdict="reject"}'] ?? 0) > 0,
    'oversize gossip counted',
  )
  t.comment(`real time ${Date.now() - started} ms`)
})
