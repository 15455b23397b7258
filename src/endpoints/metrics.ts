import { type Metrics, WAIT_BUCKETS } from '../lib/metrics.js'

/** The CNI path's metrics (what runtimes wait for); conventions in src/lib/metrics.ts. */
export function endpointsMetrics(m: Metrics) {
  return {
    /** attached, detached, gc_released, recovered (completed after a crash) */
    events: m.counter({
      name: 'plexus_endpoints_events_total',
      help: 'Container attachments by event (attached, detached, gc_released, recovered)',
      labelNames: ['event'],
    }),
    /** every CNI request the agent answered, errors included (command: ADD, DEL, CHECK, GC, STATUS) */
    cniDuration: m.histogram({
      name: 'plexus_cni_request_duration_seconds',
      help: 'Time the agent took to answer a CNI request from the plugin, by command',
      labelNames: ['command'],
      buckets: WAIT_BUCKETS,
    }),
    /** code: the CNI error code the plugin prints (spec codes, 11 try again later, ...); reason: our PLX_ code */
    cniErrors: m.counter({
      name: 'plexus_cni_errors_total',
      help: 'CNI requests answered with an error, by command, CNI error code and Plexus error code',
      labelNames: ['command', 'code', 'reason'],
    }),
  }
}

export type EndpointsMetrics = ReturnType<typeof endpointsMetrics>

/** The CNI command a route of /v1/cni/<verb> serves ("/v1/cni/add" → "ADD"). */
export function cniCommandOf(url: string | undefined): string {
  const verb = /^\/v1\/cni\/([a-z]+)$/.exec(url ?? '')?.[1]
  return verb ? verb.toUpperCase() : 'UNKNOWN'
}
