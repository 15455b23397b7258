import type { Metrics } from '../lib/metrics.js'

/** ipam's metrics (the subnet lease and container addresses); conventions in src/lib/metrics.ts. */
export function ipamMetrics(m: Metrics) {
  return {
    /** acquired, renewed, renew_failed, lost, withdrawn (no majority heard a renewal), fenced */
    leaseEvents: m.counter({
      name: 'plexus_ipam_lease_events_total',
      help: 'Subnet lease events of this host (acquired, renewed, renew_failed, fenced, lost, withdrawn)',
      labelNames: ['event'],
    }),
    stepErrors: m.counter({
      name: 'plexus_ipam_lease_errors_total',
      help: 'Lease manager steps that failed (retried)',
    }),
    noFreeSubnet: m.counter({
      name: 'plexus_ipam_no_free_subnet_total',
      help: 'Claims that found no free host subnet in the cluster network',
    }),
    invalidNetworkConfig: m.counter({
      name: 'plexus_ipam_invalid_network_config_total',
      help: 'Invalid cluster network configs seen (the last valid one is kept)',
    }),
    invalidLeases: m.counter({
      name: 'plexus_ipam_invalid_leases_total',
      help: 'Lease records of other hosts ignored, by kind of fault',
      labelNames: ['kind'],
    }),
    staleAddresses: m.counter({
      name: 'plexus_ipam_stale_addresses_total',
      help: 'Container addresses found outside this host subnet after the lease moved',
    }),
  }
}

export type IpamMetrics = ReturnType<typeof ipamMetrics>

/** The lease state as a set of 0/1 series (one per state, 1 for the current one), read when scraped. */
export function leaseStateGauge(m: Metrics, states: readonly string[], current: () => string): void {
  m.sampled(
    {
      name: 'plexus_ipam_lease_state',
      help: 'The subnet lease state of this host: 1 for the current state, 0 for the others',
      labelNames: ['state'],
    },
    (g) => {
      const now = current()
      for (const state of states) g.set({ state }, state === now ? 1 : 0)
    },
  )
}
