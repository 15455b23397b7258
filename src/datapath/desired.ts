// Pure: store contents (the valid leases, our own lease, the network config)
// plus what we know of this host → the kernel state the datapath wants.
import { formatIPv4 } from '../ipam/cidr.js'
import { type NetworkConfig, overlayMtu } from '../ipam/config.js'
import { gatewayOf, type Lease, type LeaseView } from '../ipam/leases.js'
import { backendFor } from './backend/index.js'
import { vtepMac } from './backend/vxlan/mac.js'
import { isolationSection } from './firewall/isolation.js'
import { clusterSection, type Section } from './firewall/model.js'
import { type SpoofEndpoint, spoofSection } from './firewall/spoof.js'
import { bridgeMac } from './mac.js'
import {
  BRIDGE_NAME,
  type DesiredState,
  type DesiredSwitch,
  type LocalContext,
  type RemotePlan,
  type Underlay,
  type WgPeer,
  WIREGUARD_NAME,
} from './model.js'

export interface DesiredInput {
  network: NetworkConfig
  /** this host's peer id */
  peerId: string
  /** this host's own lease (must be among leases.valid to be programmed) */
  self: Lease
  leases: LeaseView
  underlay: Underlay
  /**
   * further firewall sections (published ports, issue 7), ahead of the cluster
   * section: a published port's hairpin masquerade must come before the
   * cluster's "nat-inside" return; these sections only match their own flows
   */
  extraSections?: Section[]
  /** per-interface switches those sections need (route_localnet, hairpin) */
  switches?: DesiredSwitch[]
  /** this host's container interfaces (endpoint records, checked with checkEndpoint): their anti-spoofing rules */
  endpoints?: SpoofEndpoint[]
  /** wireguard: this host's public key (a remote publishing the same one is refused) */
  wgPublicKey?: string
}

export function localContext(input: DesiredInput): LocalContext {
  const { network, self, underlay } = input
  return {
    network,
    self,
    underlay,
    // follow what our lease publishes (what the others program); derive it when the lease has none
    vtepMac: self.value.backend.vtepMac ?? vtepMac(input.peerId, network.Backend.VNI),
    mtu: overlayMtu(network, underlay.mtu),
    ...(input.wgPublicKey ? { wgPublicKey: input.wgPublicKey } : {}),
  }
}

export function desiredState(input: DesiredInput): DesiredState {
  const ctx = localContext(input)
  const backend = backendFor(input.network.Backend.Type)
  const state: DesiredState = {
    links: [
      {
        name: BRIDGE_NAME,
        kind: 'bridge',
        mtu: ctx.mtu,
        mac: bridgeMac(input.peerId),
        addresses: [`${formatIPv4(gatewayOf(input.self.subnet))}/${input.self.subnet.prefix}`],
      },
      ...backend.links(ctx),
    ],
    routes: [],
    neighbours: [],
    fdb: [],
    firewall: {
      sections: [
        spoofSection(input.endpoints ?? []),
        isolationSection({
          network: input.network,
          subnet: input.self.subnet,
          members: input.leases.valid.map((l) => l.value.publicIp),
        }),
        ...(input.extraSections ?? []),
        clusterSection(input.network),
      ],
    },
    ...(input.switches?.length ? { switches: input.switches } : {}),
    remotes: [],
  }
  const wireguard =
    input.network.Backend.Type === 'wireguard'
      ? { ifname: WIREGUARD_NAME, listenPort: input.network.Backend.Port, peers: [] as WgPeer[] }
      : undefined
  if (wireguard) state.wireguard = wireguard
  const keyHolder = new Map<string, string>()
  for (const lease of input.leases.valid) {
    if (lease.peerId === input.peerId) continue
    const plan: RemotePlan = {
      peerId: lease.peerId,
      host: lease.value.hostname,
      subnet: lease.value.subnet,
      publicIp: lease.value.publicIp,
      mode: 'refused',
    }
    state.remotes.push(plan)
    if (lease.value.publicIp === input.underlay.address) {
      plan.reason = `${lease.value.hostname} claims this host's own underlay address ${lease.value.publicIp}`
      continue
    }
    const entries = backend.remote(ctx, lease)
    if ('refused' in entries) {
      plan.reason = entries.refused
      continue
    }
    // one WireGuard peer per key: a second lease naming a key already taken is refused, not merged
    const taken = entries.peers?.map((p) => keyHolder.get(p.publicKey)).find((h) => h !== undefined)
    if (taken) {
      plan.reason = `${lease.value.hostname} publishes the WireGuard key of ${taken}`
      continue
    }
    for (const p of entries.peers ?? []) keyHolder.set(p.publicKey, lease.value.hostname)
    wireguard?.peers.push(...(entries.peers ?? []))
    plan.mode = entries.mode
    state.routes.push(...entries.routes)
    state.neighbours.push(...entries.neighbours)
    state.fdb.push(...entries.fdb)
  }
  return state
}
