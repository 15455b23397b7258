import { errorMessage, PlexusError } from '../lib/errors.js'
import { networkCodec } from '../store/codecs.js'
import type { NetworkValue } from '../store/records.js'
import {
  type JsonValue,
  LEASE_PREFIX,
  NET_LEASE_PREFIX,
  NETWORKS_PREFIX,
  type ReadableStore,
  type Store,
} from '../store/types.js'
import { cidrOf, overlaps } from './cidr.js'
import { NETWORK_CONFIG_KEY, type NetworkConfig, parseNetworkConfig, sameNetworkConfig } from './config.js'
import { type InvalidLease, type Lease, validLeases } from './leases.js'
import { blockConfig, netLeaseKeys, networkKey, parseMacvlanNetwork } from './macvlan.js'

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
 * one under a taken name, or a range that overlaps another network's, is a
 * conflict (two networks must not hand out one address).
 */
export async function createNamedNetwork(
  store: Store,
  input: unknown,
): Promise<{ network: NetworkValue; changed: boolean }> {
  const network = parseMacvlanNetwork(input)
  const current = store.get(networkKey(network.name))
  const existing = current ? networkCodec.valueOf(current) : undefined
  if (existing && JSON.stringify(parseOr(existing)) === JSON.stringify(network))
    return { network, changed: false }
  if (current)
    throw new PlexusError(
      'PLX_IPAM_NETWORK_EXISTS',
      `network ${network.name} already exists; remove it first`,
      {
        status: 409,
      },
    )
  const range = cidrOf(network.range)
  for (const other of namedNetworks(store)) {
    if (overlaps(cidrOf(other.range), range))
      throw new PlexusError(
        'PLX_IPAM_NETWORK_EXISTS',
        `range ${network.range} overlaps network ${other.name}'s range ${other.range}`,
        { status: 409 },
      )
  }
  await store.put(networkKey(network.name), network as unknown as JsonValue, { cas: 0 })
  return { network, changed: true }
}

function parseOr(v: unknown): NetworkValue | undefined {
  try {
    return parseMacvlanNetwork(v)
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

/** `plexctl network rm`: every host then gives its block up and forgets the network's addresses (networks.ts). */
export async function removeNamedNetwork(store: Store, name: string): Promise<void> {
  if (!store.get(networkKey(name)))
    throw new PlexusError('PLX_IPAM_NO_NETWORK', `no network named ${JSON.stringify(name)}`, { status: 404 })
  await store.delete(networkKey(name))
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
      blockConfig(network),
      now,
      netLeaseKeys(network.name),
    )
    return { network, blocks: view.valid.map((l) => subnetRow(store, l, now)), invalid: view.invalid }
  })
}
