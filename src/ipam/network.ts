import { errorMessage, PlexusError } from '../lib/errors.js'
import { endpointCodec, netMemberCodec, networkCodec, networkLinkCodec } from '../store/codecs.js'
import type { NetworkLinkValue, NetworkValue } from '../store/records.js'
import {
  ENDPOINT_PREFIX,
  type JsonValue,
  LEASE_PREFIX,
  NET_LEASE_PREFIX,
  NET_MEMBER_PREFIX,
  NETWORK_LINKS_PREFIX,
  NETWORKS_PREFIX,
  type ReadableStore,
  type Store,
} from '../store/types.js'
import {
  addressRange,
  CLUSTER_NETWORK_NAME,
  freeVni,
  leaseConfig,
  mergeLink,
  networkLinkKey,
  parseNamedNetwork,
} from './bridge.js'
import { cidrOf, formatIPv4, overlaps } from './cidr.js'
import {
  isObject,
  NETWORK_CONFIG_KEY,
  NETWORK_DEFAULTS,
  type NetworkConfig,
  parseNetworkConfig,
  sameNetworkConfig,
} from './config.js'
import { gatewayOf, type InvalidLease, type Lease, validLeases } from './leases.js'
import { netLeaseKeys, networkKey } from './macvlan.js'

// What the API serves about the cluster network, the named networks and the leases, computed
// from the store; the routes only map these to HTTP.

export interface NetworkInfo {
  /** null when the stored value is invalid (then `problem` says why) */
  config: NetworkConfig | null
  problem?: string
  /** peer id of the host that wrote it */
  setBy: string
  setAt: string
}

/** The stored network config, or undefined when none is set. */
export function readNetwork(store: ReadableStore): NetworkInfo | undefined {
  const rec = store.get(NETWORK_CONFIG_KEY)
  if (!rec) return undefined
  const base = { setBy: rec.owner, setAt: new Date(rec.version.wall).toISOString() }
  try {
    return { config: parseNetworkConfig(rec.value), ...base }
  } catch (err) {
    return { config: null, problem: errorMessage(err), ...base }
  }
}

/** The stored network config; PLX_IPAM_NO_NETWORK (404) when none is set. */
export function requireNetwork(store: ReadableStore): NetworkInfo {
  const info = readNetwork(store)
  if (!info)
    throw new PlexusError('PLX_IPAM_NO_NETWORK', 'no network config is set: run `plexctl network init`', {
      status: 404,
    })
  return info
}

/**
 * `plexctl network init` / PUT /v1/network: validates everything first, so a
 * bad config is never written. Setting the same config again is a no-op; a
 * different one needs `force` (hosts then re-claim subnets that no longer fit).
 */
export async function initNetwork(
  store: Store,
  input: unknown,
  force: boolean,
): Promise<{ config: NetworkConfig; changed: boolean }> {
  const config = parseNetworkConfig(input)
  const current = store.get(NETWORK_CONFIG_KEY)
  if (current) {
    let existing: NetworkConfig | undefined
    try {
      existing = parseNetworkConfig(current.value)
    } catch {
      // an invalid stored config may always be replaced
    }
    if (existing && sameNetworkConfig(existing, config)) return { config: existing, changed: false }
    if (existing && !force) {
      throw new PlexusError(
        'PLX_IPAM_NETWORK_EXISTS',
        `a different network config is already set (${existing.Network}, /${existing.SubnetLen}, ${existing.Backend.Type}); use --force to replace it (hosts whose subnet no longer fits will move)`,
        { status: 409 },
      )
    }
  }
  await store.put(NETWORK_CONFIG_KEY, config as unknown as JsonValue)
  return { config, changed: true }
}

export interface SubnetRow {
  peerId: string
  host: string
  subnet: string
  publicIp: string
  backend: string
  vtepMac?: string
  claimedAt: string
  expiresInSeconds: number
  self: boolean
}

export interface SubnetsReport {
  network: string | null
  leases: SubnetRow[]
  invalid: InvalidLease[]
}

/** Every lease, judged against the network config: valid ones and the ignored ones with their reasons. */
export function subnetsReport(store: ReadableStore, now = Date.now()): SubnetsReport {
  const cfg = readNetwork(store)?.config
  if (!cfg) return { network: null, leases: [], invalid: [] }
  const view = validLeases(store.list(LEASE_PREFIX), cfg, now)
  return {
    network: cfg.Network,
    leases: view.valid.map((l) => subnetRow(store, l, now)),
    invalid: view.invalid,
  }
}

function subnetRow(store: ReadableStore, l: Lease, now: number): SubnetRow {
  return {
    peerId: l.peerId,
    host: l.value.hostname,
    subnet: l.value.subnet,
    publicIp: l.value.publicIp,
    backend: l.value.backend.type,
    ...(l.value.backend.vtepMac ? { vtepMac: l.value.backend.vtepMac } : {}),
    claimedAt: new Date(l.value.claimedAt).toISOString(),
    expiresInSeconds: Math.max(0, Math.round((l.expiresAt - now) / 1000)),
    self: l.peerId === store.self,
  }
}

/**
 * `plexctl network create` / POST /v1/networks: every problem named before
 * anything is written. Creating the same network again is a no-op; another
 * one under a taken name, addresses that overlap another network's (or the
 * cluster network's), or a VNI another network uses is a conflict (409). A
 * bridge network without a VNI gets the lowest free one above the cluster's.
 */
export async function createNamedNetwork(
  store: Store,
  input: unknown,
): Promise<{ network: NetworkValue; changed: boolean }> {
  const others = namedNetworks(store)
  const cluster = readNetwork(store)?.config ?? undefined
  const clusterVni = cluster?.Backend.VNI ?? NETWORK_DEFAULTS.Backend.VNI
  const vnis = others.flatMap((n) => (n.driver === 'bridge' ? [n.vni] : []))
  const filled =
    isObject(input) && input.driver === 'bridge' && input.vni === undefined
      ? { ...input, vni: freeVni(clusterVni, vnis) }
      : input
  const network = parseNamedNetwork(filled)
  const current = store.get(networkKey(network.name))
  const existing = current ? networkCodec.valueOf(current) : undefined
  const conflict = (message: string) => new PlexusError('PLX_IPAM_NETWORK_EXISTS', message, { status: 409 })
  if (existing && JSON.stringify(parseOr(existing)) === JSON.stringify(network))
    return { network, changed: false }
  if (current) throw conflict(`network ${network.name} already exists; remove it first`)
  const range = cidrOf(addressRange(network))
  for (const other of others) {
    if (overlaps(cidrOf(addressRange(other)), range))
      throw conflict(`${addressRange(network)} overlaps network ${other.name}'s ${addressRange(other)}`)
    if (network.driver === 'bridge' && other.driver === 'bridge' && other.vni === network.vni)
      throw conflict(`VNI ${network.vni} is network ${other.name}'s`)
  }
  if (network.driver === 'bridge' && cluster) {
    if (overlaps(cidrOf(cluster.Network), range))
      throw conflict(`${network.cidr} overlaps the cluster network ${cluster.Network}`)
    if (network.vni === cluster.Backend.VNI) throw conflict(`VNI ${network.vni} is the cluster network's`)
  }
  await store.put(networkKey(network.name), network as unknown as JsonValue, { cas: 0 })
  return { network, changed: true }
}

function parseOr(v: unknown): NetworkValue | undefined {
  try {
    return parseNamedNetwork(v)
  } catch {
    return undefined
  }
}

/** the valid named networks in the store, by name */
export function namedNetworks(store: ReadableStore): NetworkValue[] {
  return store
    .list(NETWORKS_PREFIX)
    .map((r) => parseOr(networkCodec.valueOf(r)))
    .filter((n): n is NetworkValue => n !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * `plexctl network rm`: every host then gives its block up and forgets the
 * network's addresses (networks.ts); the links from and to it go too.
 * Refused while containers are attached (Docker's "active endpoints"), as
 * this host's store lists them, unless `force`: their addresses would no
 * longer be reserved.
 */
export async function removeNamedNetwork(store: Store, name: string, force = false): Promise<void> {
  if (!store.get(networkKey(name))) throw noNetwork(name)
  const attached = networkMembers(store).filter((m) => m.network === name)
  if (attached.length && !force)
    throw new PlexusError(
      'PLX_IPAM_NETWORK_IN_USE',
      `network ${name} has ${attached.length} container(s) attached: ${attached.map(memberName).join(', ')}; DEL them first, or use --force (their addresses are then no longer reserved)`,
      { status: 409, members: attached.map(memberName) },
    )
  for (const l of networkLinks(store))
    if (l.from === name || l.to === name) await store.delete(networkLinkKey(l.from, l.to))
  await store.delete(networkKey(name))
}

const noNetwork = (name: string) =>
  new PlexusError('PLX_IPAM_NO_NETWORK', `no network named ${JSON.stringify(name)}`, { status: 404 })

/** a bridge network, or the cluster network ("plexus"): what a link may join */
function assertOverlay(store: ReadableStore, name: string): void {
  if (name === CLUSTER_NETWORK_NAME) return
  const rec = store.get(networkKey(name))
  if (!rec) throw noNetwork(name)
  if (parseOr(networkCodec.valueOf(rec))?.driver !== 'bridge')
    throw new PlexusError('PLX_IPAM_NETWORK_INVALID', `network ${name} is not a bridge network`, {
      problems: [`${name} is not a bridge network: only overlay networks are isolated and connected`],
    })
}

/**
 * `plexctl network connect FROM TO [--port P[/proto]]` (POST
 * /v1/networks/:name/connect): containers of FROM may open connections to
 * containers of TO (on that port only, when given); replies come back.
 */
export async function connectNetworks(
  store: Store,
  from: string,
  input: unknown,
): Promise<{ link: NetworkLinkValue; changed: boolean }> {
  assertOverlay(store, from)
  const to = isObject(input) && typeof input.to === 'string' ? input.to : undefined
  const current = to ? store.get(networkLinkKey(from, to)) : undefined
  const existing = current ? networkLinkCodec.decode(current) : undefined
  const link = mergeLink(from, input, existing?.ok ? existing.value : undefined)
  assertOverlay(store, link.to)
  if (existing?.ok && JSON.stringify(existing.value) === JSON.stringify(link)) return { link, changed: false }
  await store.put(networkLinkKey(from, link.to), link as unknown as JsonValue)
  return { link, changed: true }
}

/** `plexctl network disconnect FROM TO`: the link goes (404 when there is none) */
export async function disconnectNetworks(store: Store, from: string, to: string): Promise<void> {
  const key = networkLinkKey(from, to)
  if (!store.get(key))
    throw new PlexusError('PLX_IPAM_NO_LINK', `network ${from} is not connected to ${to}`, { status: 404 })
  await store.delete(key)
}

/** the valid links in the store */
export function networkLinks(store: ReadableStore): NetworkLinkValue[] {
  return store.list(NETWORK_LINKS_PREFIX).flatMap((r) => {
    const d = networkLinkCodec.decode(r)
    return d.ok ? [d.value] : []
  })
}

export interface NamedNetworkReport {
  network: NetworkValue
  /** the blocks hosts hold, as the lease rules judge them */
  blocks: SubnetRow[]
  invalid: InvalidLease[]
}

/** Every named network with the blocks of its range each host holds. */
export function namedNetworksReport(store: ReadableStore, now = Date.now()): NamedNetworkReport[] {
  return namedNetworks(store).map((network) => {
    const view = validLeases(
      store.list(NET_LEASE_PREFIX),
      leaseConfig(network),
      now,
      netLeaseKeys(network.name),
    )
    return { network, blocks: view.valid.map((l) => subnetRow(store, l, now)), invalid: view.invalid }
  })
}

/** A container interface on a network, wherever it runs. */
export interface NetworkMember {
  network: string
  containerId: string
  ifname: string
  /** the owning host's node name and peer id */
  host: string
  peerId: string
  address: string
  mac?: string
  /** the default route's next hop set for it (absent: the network's gateway) */
  gateway?: string
}

const memberName = (m: NetworkMember) =>
  `${m.containerId.slice(0, 12)}/${m.ifname} on ${m.host} (${m.address})`

/**
 * Every attached container interface in the store: endpoint records (the
 * cluster network's carry no `network`, a bridge network's name it) and the
 * macvlan networks' member records; what does not decode is left out.
 */
export function networkMembers(store: ReadableStore): NetworkMember[] {
  const endpoints = store.list(ENDPOINT_PREFIX).flatMap((r): NetworkMember[] => {
    const v = endpointCodec.valueOf(r)
    if (!v) return []
    return [
      {
        network: v.network ?? CLUSTER_NETWORK_NAME,
        containerId: v.containerId,
        ifname: v.ifname,
        host: v.host,
        peerId: r.owner,
        address: v.ipv4,
        mac: v.mac,
        ...(v.gateway ? { gateway: v.gateway } : {}),
      },
    ]
  })
  const macvlan = store.list(NET_MEMBER_PREFIX).flatMap((r): NetworkMember[] => {
    const v = netMemberCodec.valueOf(r)
    if (!v) return []
    return [
      {
        network: v.network,
        containerId: v.containerId,
        ifname: v.ifname,
        host: v.host,
        peerId: r.owner,
        address: v.address,
        ...(v.mac ? { mac: v.mac } : {}),
        gateway: v.gateway,
      },
    ]
  })
  return [...endpoints, ...macvlan]
}

/** One network as `plexctl networks` shows it. */
export interface NetworkOverview {
  name: string
  driver: 'cluster' | 'bridge' | 'macvlan'
  /** vxlan (with its VNI), host-gw, wireguard; macvlan (with its parent) */
  backend: string
  /** the cluster's and a bridge network's cidr; a macvlan network's range */
  cidr: string
  /** a macvlan network's underlay subnet and gateway */
  subnet?: string
  gateway?: string
  /** the subnet (a macvlan network's block) each host holds, as the lease rules judge them */
  hosts: { host: string; peerId: string; subnet: string }[]
  members: NetworkMember[]
}

/**
 * Every network (the cluster network first, when set, then the named ones by
 * name) with each host's subnet or block and the containers attached to it.
 */
export function networksOverview(store: ReadableStore, now = Date.now()): NetworkOverview[] {
  const members = networkMembers(store)
  const hosts = (rows: SubnetRow[]) => rows.map((l) => ({ host: l.host, peerId: l.peerId, subnet: l.subnet }))
  // an overlay member's gateway is its host subnet's first address (the bridge) unless it asked for another
  const of = (name: string, subnets: SubnetRow[] = []) =>
    members
      .filter((m) => m.network === name)
      .map((m) => {
        const held = subnets.find((l) => l.peerId === m.peerId)
        return m.gateway || !held ? m : { ...m, gateway: formatIPv4(gatewayOf(cidrOf(held.subnet))) }
      })
  const cluster = readNetwork(store)?.config
  const out: NetworkOverview[] = []
  const { leases } = subnetsReport(store, now)
  if (cluster)
    out.push({
      name: CLUSTER_NETWORK_NAME,
      driver: 'cluster',
      backend: cluster.Backend.Type === 'vxlan' ? `vxlan vni ${cluster.Backend.VNI}` : cluster.Backend.Type,
      cidr: cluster.Network,
      hosts: hosts(leases),
      members: of(CLUSTER_NETWORK_NAME, leases),
    })
  for (const { network: n, blocks } of namedNetworksReport(store, now))
    out.push(
      n.driver === 'bridge'
        ? {
            name: n.name,
            driver: 'bridge',
            backend: `${n.backend === 'vxlan' ? `vxlan vni ${n.vni}` : n.backend}${n.internal ? ', internal' : ''}`,
            cidr: n.cidr,
            hosts: hosts(blocks),
            members: of(n.name, blocks),
          }
        : {
            name: n.name,
            driver: 'macvlan',
            backend: `macvlan parent ${n.parent ?? '(underlay)'}`,
            cidr: n.range,
            subnet: n.subnet,
            gateway: n.gateway,
            hosts: hosts(blocks),
            members: of(n.name),
          },
    )
  return out
}
