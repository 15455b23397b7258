import type { FirewallKind } from './firewall/index.js'

/** The `datapath` section of plexusd's config (defaults and schema: src/agent/config.ts, docs/config.md). */
export interface DatapathConfig {
  /** firewall backend, picked once at start-up; auto: iptables when usable, else nftables */
  firewall: FirewallKind
  /** reconcile timer: drift (a deleted route, FDB entry or rule) is repaired within this */
  reconcileIntervalMs: number
  /** wireguard key rotation: from announcing the next key to using it (every host must have added it by then) */
  wireguardRotationSettleMs: number
}
