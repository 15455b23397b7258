// The datapath's desired kernel state, as plain data. Pure functions build it
// (desired.ts) and compare it with what the kernel holds (diff.ts); only
// kernel.ts turns it into netlink calls.
import type { Cidr } from '../ipam/cidr.js'
import type { NetworkConfig } from '../ipam/config.js'
import type { Lease } from '../ipam/leases.js'
import type { FirewallSpec } from './firewall/model.js'

export const BRIDGE_NAME = 'plexus0'
/** every link Plexus owns is named plexus0 or plexus.<VNI>; cleanup and stale-device removal key on this */
export const OWNED_LINK = /^plexus(0|\.\d+)$/

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

/** What a backend needs to know about this host. */
export interface LocalContext {
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
  kind: 'bridge' | 'vxlan'
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

/** How one remote lease is reached, or why it is not. */
export interface RemotePlan {
  peerId: string
  host: string
  subnet: string
  publicIp: string
  mode: 'vxlan' | 'direct' | 'refused'
  reason?: string
}

export interface DesiredState {
  links: DesiredLink[]
  routes: DesiredRoute[]
  neighbours: DesiredNeighbour[]
  fdb: DesiredFdb[]
  firewall: FirewallSpec
  remotes: RemotePlan[]
}

/** Kernel entries a backend wants for one remote lease. */
export interface RemoteEntries {
  mode: 'vxlan' | 'direct'
  routes: DesiredRoute[]
  neighbours: DesiredNeighbour[]
  fdb: DesiredFdb[]
}
