import type { Metrics } from '../lib/metrics.js'

/** The scheduler's metrics; conventions in src/lib/metrics.ts. */
export function schedulerMetrics(m: Metrics) {
  return {
    invalidRecords: m.counter({
      name: 'plexus_scheduler_invalid_records_total',
      help: 'Scheduler records (jobs, allocations, capacity) ignored because they failed validation',
    }),
    passErrors: m.counter({
      name: 'plexus_scheduler_pass_errors_total',
      help: 'Scheduler passes that failed (retried on the next change or timer)',
    }),
    placementFailures: m.counter({
      name: 'plexus_scheduler_placement_failures_total',
      help: 'Job slots the scheduler could not place (no feasible host)',
    }),
    deferredSlots: m.gauge({
      name: 'plexus_scheduler_deferred_slots',
      help: 'Slots of jobs this host owns left empty after a failure: waiting out the reschedule delay or given up',
    }),
    reverts: m.counter({
      name: 'plexus_scheduler_reverts_total',
      help: 'Rolling updates this host reverted to the version they replaced (update.autoRevert)',
    }),
    allocations: m.counter({
      name: 'plexus_scheduler_allocations_total',
      help: 'Allocations this host judged, by result (admitted, rejected)',
      labelNames: ['result'],
    }),
  }
}
