import type { Metrics } from '../lib/metrics.js'

/** The store's metrics (names and meaning in one place; see src/lib/metrics.ts for the conventions). */
export function storeMetrics(m: Metrics) {
  return {
    /** records from other hosts (gossip, sync) refused before they touched the map, by why */
    rejected: m.counter({
      name: 'plexus_store_records_rejected_total',
      help: 'Records from other hosts refused by the store, by reason (malformed, signature, not-owner, future)',
      labelNames: ['reason'],
    }),
    /** records of the on-disk snapshot dropped at start-up */
    snapshotDropped: m.counter({
      name: 'plexus_store_snapshot_records_dropped_total',
      help: 'Records of the on-disk snapshot dropped when the agent started, by reason',
      labelNames: ['reason'],
    }),
    watchErrors: m.counter({
      name: 'plexus_store_watch_errors_total',
      help: 'Exceptions thrown by store watchers (a consumer bug; the store carries on)',
    }),
  }
}

export type StoreMetrics = ReturnType<typeof storeMetrics>

/** Records held, read when scraped: live ones and dead ones (tombstones, expired) kept until reaped. */
export function storeRecordsGauge(m: Metrics, count: () => { live: number; dead: number }): void {
  m.sampled(
    {
      name: 'plexus_store_records',
      help: 'Records in the store: live, and dead (tombstones and expired records kept until reaped)',
      labelNames: ['state'],
    },
    (g) => {
      const c = count()
      g.set({ state: 'live' }, c.live)
      g.set({ state: 'dead' }, c.dead)
    },
  )
}
