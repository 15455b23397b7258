import type { Metrics } from '../lib/metrics.js'

/** The API's own metrics; conventions in src/lib/metrics.ts. */
export function apiMetrics(m: Metrics) {
  return {
    kvThrottled: m.counter({
      name: 'plexus_api_kv_writes_throttled_total',
      help: 'KV writes refused with 503: local writes waiting for gossip past their bound, or the event loop too busy to take more',
    }),
    connections: m.counter({
      name: 'plexus_api_connections_total',
      help: 'API connections by outcome: accepted, refused (the client or the listener was full), timedOut (no whole request in time)',
      labelNames: ['listener', 'outcome'],
    }),
    watchStreams: m.counter({
      name: 'plexus_api_watch_streams_total',
      help: 'SSE watch streams: opened, and tooSlow (closed because the reader left more than 1 MiB unread; it resumes with Last-Event-ID)',
      labelNames: ['outcome'],
    }),
    appCallers: m.counter({
      name: 'plexus_api_app_requests_total',
      help: "application API requests by who called: endpoint (one of this host's containers), unknown (refused, 403)",
      labelNames: ['outcome'],
    }),
    appRateLimited: m.counter({
      name: 'plexus_api_app_rate_limited_total',
      help: 'application API requests refused with 429 because their address made more than api.appRequestsPerSecond that second',
    }),
    aclDenials: m.counter({
      name: 'plexus_api_acl_denials_total',
      help: 'application API requests refused with 403 PLX_ACL_DENIED, by kind: kv (read or write of a key), service (discover or register)',
      labelNames: ['kind'],
    }),
  }
}
