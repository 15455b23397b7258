import type { Metrics } from '../lib/metrics.js'

/** The API's own metrics; conventions in src/lib/metrics.ts. */
export function apiMetrics(m: Metrics) {
  return {
    kvThrottled: m.counter({
      name: 'plexus_api_kv_writes_throttled_total',
      help: 'KV writes refused with 503 because local writes waiting for gossip were past their bound',
    }),
    connections: m.counter({
      name: 'plexus_api_connections_total',
      help: 'API connections by outcome: accepted, refused (the client or the listener was full), timedOut (no whole request in time)',
      labelNames: ['listener', 'outcome'],
    }),
  }
}
