import { type Metrics, WAIT_BUCKETS } from '../lib/metrics.js'
import type { FirewallBackend } from './firewall/backend.js'

/** The datapath's metrics (reconciler passes, drift, firewall); conventions in src/lib/metrics.ts. */
export function datapathMetrics(m: Metrics) {
  return {
    /**
     * ok: every change applied; failed: the pass threw or some change failed (retried next pass);
     * unchanged: a light pass found the desired state the last one applied and stopped before the dumps
     */
    passes: m.counter({
      name: 'plexus_datapath_passes_total',
      help: 'Datapath reconciler passes, by result (ok, failed, unchanged)',
      labelNames: ['result'],
    }),
    passDuration: m.histogram({
      name: 'plexus_datapath_pass_duration_seconds',
      help: 'Time a datapath reconciler pass took (read the kernel, diff, apply)',
      buckets: WAIT_BUCKETS,
    }),
    changeErrors: m.counter({
      name: 'plexus_datapath_change_errors_total',
      help: 'Kernel changes a pass failed to apply (retried next pass)',
    }),
    /** entries the datapath had confirmed and found changed or gone (someone deleted a route) */
    driftRepaired: m.counter({
      name: 'plexus_datapath_drift_repaired_total',
      help: 'Kernel entries that drifted from what the datapath had programmed and were repaired, by kind',
      labelNames: ['kind'],
    }),
    bridgeAddressesWithdrawn: m.counter({
      name: 'plexus_datapath_bridge_addresses_withdrawn_total',
      help: 'Gateway addresses withdrawn from the bridge because this host lost its subnet',
    }),
    remotesRefused: m.counter({
      name: 'plexus_datapath_remote_subnets_refused_total',
      help: "Other hosts' subnets not programmed (a lease that would route into a public range, ...), once per cause",
    }),
    /** timer passes that trusted the rules because nothing had committed to nf_tables since the last read */
    firewallReadsSkipped: m.counter({
      name: 'plexus_datapath_firewall_reads_skipped_total',
      help: 'Full datapath passes that did not list the firewall because its nf_tables generation had not moved',
    }),
    /** read from the kernel's rule counters when a full pass lists the rules (e.g. section spoof: forged MAC/IP/ARP dropped) */
    firewallDropped: m.counter({
      name: 'plexus_datapath_firewall_dropped_packets_total',
      help: 'Packets dropped by a Plexus firewall section, by section (spoof: anti-spoofing), from the kernel counters',
      labelNames: ['section'],
    }),
    spoofUnguarded: m.counter({
      name: 'plexus_datapath_spoof_unguarded_total',
      help: 'Endpoint records the anti-spoofing section could not guard (no usable MAC or address)',
    }),
    wireguardRestarts: m.counter({
      name: 'plexus_datapath_wireguard_restarts_total',
      help: 'Times the WireGuard device (wireguard-go) was found dead or deaf and started again',
    }),
    wireguardKeyRotations: m.counter({
      name: 'plexus_datapath_wireguard_key_rotations_total',
      help: "Times this host's WireGuard key was replaced by the next one (plexctl network rotate-keys)",
    }),
    firewallApplyDuration: m.histogram({
      name: 'plexus_datapath_firewall_apply_duration_seconds',
      help: 'Time one atomic firewall apply took (iptables-restore or nft -f), by backend',
      labelNames: ['backend'],
      buckets: WAIT_BUCKETS,
    }),
  }
}

export type DatapathMetrics = ReturnType<typeof datapathMetrics>

/** The firewall backend with each apply timed (failures too: a slow failure is worth seeing). */
export function timedFirewall(fw: FirewallBackend, metrics: DatapathMetrics): FirewallBackend {
  return {
    name: fw.name,
    variant: fw.variant,
    read: (want) => fw.read(want),
    generation: () => fw.generation(),
    remove: () => fw.remove(),
    prepare: () => fw.prepare(),
    release: () => fw.release(),
    async apply(spec) {
      const end = metrics.firewallApplyDuration.startTimer({ backend: fw.name })
      try {
        await fw.apply(spec)
      } finally {
        end()
      }
    },
  }
}
