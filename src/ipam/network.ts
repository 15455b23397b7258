import { errorMessage, PlexusError } from '../lib/errors.js'
import { type JsonValue, LEASE_PREFIX, type ReadableStore, type Store } from '../store/types.js'
import { NETWORK_CONFIG_KEY, type NetworkConfig, parseNetworkConfig, sameNetworkConfig } from './config.js'
import { type InvalidLease, validLeases } from './leases.js'

// What the API serves about the cluster network and the leases, computed
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
    leases: view.valid.map((l) => ({
      peerId: l.peerId,
      host: l.value.hostname,
      subnet: l.value.subnet,
      publicIp: l.value.publicIp,
      backend: l.value.backend.type,
      ...(l.value.backend.vtepMac ? { vtepMac: l.value.backend.vtepMac } : {}),
      claimedAt: new Date(l.value.claimedAt).toISOString(),
      expiresInSeconds: Math.max(0, Math.round((l.expiresAt - now) / 1000)),
      self: l.peerId === store.self,
    })),
    invalid: view.invalid,
  }
}
