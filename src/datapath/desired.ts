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
import { bridgeMac, networkBridgeMac } from './mac.js'
import {
  BRIDGE_NAME,
  type DesiredLink,
  type DesiredState,
  type DesiredSwitch,
  type LocalContext,
  networkBridgeName,
  type RemotePlan,
  type Underlay,
  type WgIdentity,
  type WgPeer,
  WIREGUARD_NAME,
} from './model.js'

/**
 * A bridge network as a pass programs it (src/ipam *bridge networks*): an overlay of its own, vxlan (its own
 * VTEP) or wireguard (peers on the host's one WireGuard device, beside the cluster network's if it has one).
 */
export interface BridgeNetInput {
  name: string
  /** its lease config (src/ipam/bridge.ts subnetConfig): the cidr, host subnet length and VNI */
  network: NetworkConfig
  /** this host's valid lease of it; absent: the bridge stays, without an address (its containers are cut off) */
  self?: Lease
  leases: LeaseView
}

/** wgPublicKey, wgNextPublicKey: this host's keys (a remote publishing one of them is refused) */
export interface DesiredInput extends WgIdentity {
  network: NetworkConfig
  /** this host's peer id */
  peerId: string
  /** this host's own lease (must be among leases.valid to be programmed) */
  self: Lease
  leases: LeaseView
  underlay: Underlay
  /** the bridge networks this host serves, each with its own bridge, VTEP and remotes */
  bridgeNets?: BridgeNetInput[]
  /**
   * further firewall sections (published ports, issue 7; the networks' isolation), ahead of the cluster
   * section: a published port's hairpin masquerade must come before the
   * cluster's "nat-inside" return; these sections only match their own flows
   */
  extraSections?: Section[]
  /** per-interface switches those sections need (route_localnet, hairpin) */
  switches?: DesiredSwitch[]
  /** this host's container interfaces (endpoint records, checked with checkEndpoint): their anti-spoofing rules */
  endpoints?: SpoofEndpoint[]
}

type HostFacts = Pick<DesiredInput, 'peerId' | 'underlay' | keyof WgIdentity>

/** what a backend knows of this host on one overlay network */
function overlayContext(host: HostFacts, network: NetworkConfig, self: Lease): LocalContext {
  const { underlay } = host
  return {
    network,
    self,
    underlay,
    // follow what our lease publishes (what the others program); derive it when the lease has none
    vtepMac: self.value.backend.vtepMac ?? vtepMac(host.peerId, network.Backend.VNI),
    mtu: overlayMtu(network, underlay.mtu),
    ...(host.wgPublicKey ? { wgPublicKey: host.wgPublicKey } : {}),
    ...(host.wgNextPublicKey ? { wgNextPublicKey: host.wgNextPublicKey } : {}),
  }
}

export function localContext(input: DesiredInput): LocalContext {
  return overlayContext(input, input.network, input.self)
}

/** which host holds each WireGuard public key, across every overlay of the pass */
type KeyHolders = Map<string, { peerId: string; host: string }>

/**
 * Adds a backend device, or merges it into the one of that name an earlier
 * overlay added: every wireguard overlay shares the one WireGuard device,
 * which then holds each overlay's address.
 */
function addDevice(state: DesiredState, link: DesiredLink): void {
  const held = state.links.find((l) => l.name === link.name)
  if (!held) state.links.push(link)
  else held.addresses.push(...link.addresses.filter((a) => !held.addresses.includes(a)))
}

/**
 * A remote host's WireGuard peer, or the allowed IPs of another overlay added
 * to it: a host has one key, so it is one peer whatever the overlays it serves.
 */
function addPeer(state: DesiredState, peer: WgPeer): void {
  const held = state.wireguard?.peers.find((p) => p.publicKey === peer.publicKey)
  if (held) held.allowedIps.push(...peer.allowedIps)
  else state.wireguard?.peers.push({ ...peer, allowedIps: [...peer.allowedIps] })
}

/**
 * One overlay network's bridge, backend devices and the entries that reach
 * every other host's subnet of it: the cluster network's, and each bridge
 * network's the same way (its own bridge; its VTEP plexus.<VNI>, or the peers
 * of the one WireGuard device).
 */
function addOverlay(
  state: DesiredState,
  host: HostFacts,
  ctx: LocalContext,
  leases: LeaseView,
  bridge: Pick<DesiredLink, 'name' | 'mac'>,
  keyHolders: KeyHolders,
): void {
  const backend = backendFor(ctx.network.Backend.Type)
  const { subnet } = ctx.self
  // the first wireguard overlay (the cluster's when it is one) sets the device's port: the service gives
  // every wireguard overlay that same port (the endpoint each host publishes in its leases)
  if (ctx.network.Backend.Type === 'wireguard')
    state.wireguard ??= { ifname: WIREGUARD_NAME, listenPort: ctx.network.Backend.Port, peers: [] }
  state.links.push({
    ...bridge,
    kind: 'bridge',
    mtu: ctx.mtu,
    addresses: [`${formatIPv4(gatewayOf(subnet))}/${subnet.prefix}`],
  })
  for (const link of backend.links(ctx)) addDevice(state, link)
  for (const lease of leases.valid) {
    if (lease.peerId === host.peerId) continue
    const plan: RemotePlan = {
      peerId: lease.peerId,
      host: lease.value.hostname,
      subnet: lease.value.subnet,
      publicIp: lease.value.publicIp,
      mode: 'refused',
    }
    state.remotes.push(plan)
    if (lease.value.publicIp === host.underlay.address) {
      plan.reason = `${lease.value.hostname} claims this host's own underlay address ${lease.value.publicIp}`
      continue
    }
    const entries = backend.remote(ctx, lease)
    if ('refused' in entries) {
      plan.reason = entries.refused
      continue
    }
    // one WireGuard peer per key: a lease naming a key another host holds is refused, not merged (the
    // same host's leases of other overlays are the same peer)
    const taken = entries.peers
      ?.map((p) => keyHolders.get(p.publicKey))
      .find((h) => h !== undefined && h.peerId !== lease.peerId)
    if (taken) {
      plan.reason = `${lease.value.hostname} publishes the WireGuard key of ${taken.host}`
      continue
    }
    for (const p of entries.peers ?? []) {
      keyHolders.set(p.publicKey, { peerId: lease.peerId, host: lease.value.hostname })
      addPeer(state, p)
    }
    plan.mode = entries.mode
    state.routes.push(...entries.routes)
    state.neighbours.push(...entries.neighbours)
    state.fdb.push(...entries.fdb)
  }
}

export function desiredState(input: DesiredInput): DesiredState {
  const state: DesiredState = {
    links: [],
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
          sharedWireguard: (input.bridgeNets ?? []).some((n) => n.network.Backend.Type === 'wireguard'),
        }),
        ...(input.extraSections ?? []),
        clusterSection(input.network),
      ],
    },
    ...(input.switches?.length ? { switches: input.switches } : {}),
    remotes: [],
  }
  const keyHolders: KeyHolders = new Map()
  addOverlay(
    state,
    input,
    localContext(input),
    input.leases,
    { name: BRIDGE_NAME, mac: bridgeMac(input.peerId) },
    keyHolders,
  )
  for (const net of input.bridgeNets ?? []) {
    const bridge = { name: networkBridgeName(net.name), mac: networkBridgeMac(input.peerId, net.name) }
    const ctx = net.self && overlayContext(input, net.network, net.self)
    if (ctx) addOverlay(state, input, ctx, net.leases, bridge, keyHolders)
    else
      state.links.push({
        ...bridge,
        kind: 'bridge',
        mtu: overlayMtu(net.network, input.underlay.mtu),
        addresses: [],
      })
  }
  return state
}
