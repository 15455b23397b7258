import type { Metrics } from '../lib/metrics.js'

/** Published ports' and links' metrics; conventions in src/lib/metrics.ts. */
export function portsMetrics(m: Metrics) {
  return {
    shadowed: m.counter({
      name: 'plexus_ports_shadowed_mappings_total',
      help: 'Published-port mappings not applied because an older one holds the same host port',
    }),
    conflicts: m.counter({
      name: 'plexus_ports_conflicts_total',
      help: 'Port publications refused because the host port was taken (container or host process)',
    }),
    linkHostsUpdates: m.counter({
      name: 'plexus_links_hosts_updates_total',
      help: "Rewrites of linked containers' hosts files, by result (updated, refused: not a file we may write)",
      labelNames: ['result'],
    }),
  }
}

export type PortsMetrics = ReturnType<typeof portsMetrics>

/** Host ports published by this host's containers (mappings in the firewall section), read when scraped. */
export function publishedPortsGauge(m: Metrics, count: () => number): void {
  m.sampled(
    { name: 'plexus_ports_published', help: "Host ports published by this host's containers (as applied)" },
    (g) => g.set(count()),
  )
}
