// The datapath's desired kernel state, as plain data. Pure functions build it
// (desired.ts) and compare it with what the kernel holds (diff.ts); only
// kernel.ts turns it into netlink calls.
import { createHash } from 'node:crypto'
import type { Cidr } from '../ipam/cidr.js'
import type { NetworkConfig } from '../ipam/config.js'
import type { Lease } from '../ipam/leases.js'
import type { StoreRecord } from '../store/types.js'
import type { FirewallSpec, Section } from './firewall/model.js'

export const BRIDGE_NAME = 'plexus0'
/** the wireguard backend's one device */
export const WIREGUARD_NAME = 'plexus-wg'
/** a bridge network's bridge: this prefix and 8 hex digits of sha256(name) (IFNAMSIZ allows 15) */
export const NETWORK_BRIDGE_PREFIX = 'plxb-'
/**
 * every link Plexus owns is named plexus0, plexus.<VNI> (the cluster's VTEP and each bridge network's),
 * plexus-wg or plxb-<8 hex> (a bridge network's bridge); cleanup and stale-device removal key on this
 */
export const OWNED_LINK = /^(plexus(0|\.\d+|-wg)|plxb-[0-9a-f]{8})$/

/** a device of named network `network`: `prefix` and 8 hex digits of sha256(name), within IFNAMSIZ */
export function networkDeviceName(prefix: string, network: string): string {
  return `${prefix}${createHash('sha256').update(network).digest('hex').slice(0, 8)}`
}

/** the bridge of bridge network `network` */
export const networkBridgeName = (network: string): string =>
  networkDeviceName(NETWORK_BRIDGE_PREFIX, network)

export function vtepName(vni: number): string {
  return `plexus.${vni}`
}

/** The underlay: the interface and address other hosts reach this one at. */
export interface Underlay {
  ifname: string
  ifindex: number
  address: string
  mtu: number
  /** IPv4 networks directly connected on the underlay interface (for "same L2 segment") */
  prefixes: Cidr[]
}

/** This host's WireGuard public keys (wireguard), once the driver has loaded them. */
export interface WgIdentity {
  wgPublicKey?: string
  /** the key it takes next, while it rotates (backend/wireguard/rotation.ts) */
  wgNextPublicKey?: string
}

/** What a backend needs to know about this host. */
export interface LocalContext extends WgIdentity {
  network: NetworkConfig
  /** this host's own valid lease */
  self: Lease
  underlay: Underlay
  /** this host's VTEP MAC (vxlan) */
  vtepMac: string
  /** overlay MTU: of the bridge, the VTEP and (set by the CNI plugin) container interfaces */
  mtu: number
}

export interface DesiredLink {
  name: string
  /** wireguard: made by the WireGuard driver (kernel or wireguard-go), not by netlink */
  kind: 'bridge' | 'vxlan' | 'wireguard'
  mtu: number
  mac?: string
  vxlan?: { vni: number; port: number; local: string; dev: string; learning: false }
  /** IPv4 addresses as address/prefixLen */
  addresses: string[]
}

export interface DesiredRoute {
  /** CIDR */
  dst: string
  gateway: string
  dev: string
  onlink: boolean
}

export interface DesiredNeighbour {
  dev: string
  ip: string
  mac: string
}

export interface DesiredFdb {
  dev: string
  mac: string
  /** remote VTEP (underlay) address */
  dst: string
}

/** One WireGuard peer: a remote host, its key, where it listens and the subnet it may send from. */
export interface WgPeer {
  /** base64, as `wg` prints it */
  publicKey: string
  /** address:port */
  endpoint: string
  allowedIps: string[]
}

/** The WireGuard device's configuration (the private key is the driver's: it never enters the model). */
export interface DesiredWireguard {
  ifname: string
  listenPort: number
  peers: WgPeer[]
}

/** How one remote lease is reached, or why it is not. */
export interface RemotePlan {
  peerId: string
  host: string
  subnet: string
  publicIp: string
  mode: 'vxlan' | 'direct' | 'wireguard' | 'refused'
  reason?: string
}

/**
 * A per-interface kernel switch a rule provider needs: net.ipv4.conf.<dev>.route_localnet
 * (/proc/sys), or hairpin mode of a bridge port (/sys/class/net/<dev>/brport/hairpin_mode).
 */
export interface DesiredSwitch {
  /** conntrack-acct: the namespace's byte counters of connection tracking (dev is NAMESPACE_WIDE) */
  kind: 'route-localnet' | 'hairpin' | 'conntrack-acct'
  dev: string
  on: boolean
}

/** What a rule provider computes from: this host's endpoint records and where its containers live. */
export interface ProviderInput {
  /** this host's subnet, as a CIDR */
  subnet: string
  bridge: string
  /** the records under endpoints/<self>/, unchecked: the provider validates what it reads */
  endpoints: readonly Pick<StoreRecord, 'key' | 'owner' | 'value'>[]
}

/** the `dev` of a switch that is the namespace's, not an interface's */
export const NAMESPACE_WIDE = '-'

/** A rule provider's share of the desired state: one firewall section and the switches it needs. */
export interface Provided {
  section: Section
  switches: DesiredSwitch[]
  /** the store keys behind each rule (by rule id) and switch (by `<kind> <dev>`), for explain() */
  origins: Record<string, string[]>
}

/**
 * Pure: store records → a firewall section and switches (published ports:
 * src/ports/publish.ts `publishedPortRules`). The agent hands providers to
 * the datapath, which calls them on every pass, so everything they produce
 * is rebuilt from the store after a restart.
 */
export type RuleProvider = (input: ProviderInput) => Provided

export interface DesiredState {
  links: DesiredLink[]
  routes: DesiredRoute[]
  neighbours: DesiredNeighbour[]
  fdb: DesiredFdb[]
  firewall: FirewallSpec
  /** switches of rule providers (absent: none) */
  switches?: DesiredSwitch[]
  remotes: RemotePlan[]
  /** wireguard backend only */
  wireguard?: DesiredWireguard
}

/** Kernel entries a backend wants for one remote lease. */
export interface RemoteEntries {
  mode: 'vxlan' | 'direct' | 'wireguard'
  routes: DesiredRoute[]
  neighbours: DesiredNeighbour[]
  fdb: DesiredFdb[]
  peers?: WgPeer[]
}
