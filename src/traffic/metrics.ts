import type { Metrics } from '../lib/metrics.js'

/** The traffic sampler's metrics; conventions in src/lib/metrics.ts. Per pair: `plexctl traffic`, not labels. */
export function trafficMetrics(m: Metrics) {
  return {
    samples: m.counter({
      name: 'plexus_traffic_samples_total',
      help: 'Dumps of the conntrack table, by result (ok, failed)',
      labelNames: ['result'],
    }),
    entries: m.gauge({
      name: 'plexus_traffic_conntrack_entries',
      help: 'Entries in the host namespace conntrack table at the last sample',
    }),
    bytes: m.counter({
      name: 'plexus_traffic_service_bytes_total',
      help: 'Bytes between services counted on this host (connections its containers opened)',
    }),
    pairs: m.gauge({
      name: 'plexus_traffic_pairs',
      help: 'Pairs of services in this host summary (traffic/<peerId>)',
    }),
  }
}
