import type { Metrics } from '../lib/metrics.js'

/** The health checks' metrics; conventions in src/lib/metrics.ts. */
export function healthMetrics(m: Metrics) {
  return {
    runs: m.counter({
      name: 'plexus_health_check_runs_total',
      help: 'Health check runs on this host, by result (pass, fail)',
      labelNames: ['result'],
    }),
  }
}

export type HealthMetrics = ReturnType<typeof healthMetrics>

/** Checks by their status (passing, critical; pending: no verdict yet), read when scraped. */
export function healthStatusGauge(m: Metrics, statuses: () => Iterable<string>): void {
  m.sampled(
    {
      name: 'plexus_health_checks',
      help: "Health checks of this host's endpoints, by status (passing, critical, pending: no verdict yet)",
      labelNames: ['status'],
    },
    (g) => {
      for (const status of ['passing', 'critical', 'pending']) g.set({ status }, 0)
      for (const status of statuses()) g.inc({ status })
    },
  )
}
