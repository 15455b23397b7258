import type { RecordCodec, RecordInput } from '../store/codec.js'
import { leaseCodec } from '../store/codecs.js'
import type { LeaseValue } from '../store/records.js'
import { WG_KEY_PATTERN } from '../store/schemas.js'
import { LEASE_PREFIX, NODE_PREFIX, type StoreRecord } from '../store/types.js'
import {
  type Cidr,
  containsAddress,
  containsCidr,
  formatCidr,
  formatIPv4,
  overlaps,
  parseCidr,
  parseIPv4,
} from './cidr.js'
import { type NetworkConfig, type NetworkRanges, networkRanges, subnetCount } from './config.js'

// Pure lease logic: which leases in the store count, who wins a contested
// subnet, and which subnet a host should claim. The lease manager and the
// datapath reconciler both build on these, so every host reaches the same
// verdict from the same store contents.

export function leaseKey(peerId: string): string {
  return `${LEASE_PREFIX}${peerId}`
}

/**
 * Where one set of competing leases lives in the store: the cluster network's
 * host subnets (leases/<peerId>), or the blocks of a named network's range
 * (macvlan.ts netLeaseKeys). The rules below are the same for both.
 */
export interface LeaseKeys {
  /** what every key of the set starts with (listed and watched) */
  prefix: string
  key(peerId: string): string
  /** the holder a key of the set names, or undefined when the key is malformed */
  peerOf(key: string): string | undefined
  /** whether a key under `prefix` belongs to this set (others share the prefix) */
  of(key: string): boolean
  /** the record shape of the set's prefix */
  codec: RecordCodec<LeaseValue>
}

export const CLUSTER_LEASES: LeaseKeys = {
  prefix: LEASE_PREFIX,
  key: leaseKey,
  peerOf: (key) => {
    const peer = key.slice(LEASE_PREFIX.length)
    return peer.includes('/') ? undefined : peer
  },
  of: (key) => key.startsWith(LEASE_PREFIX),
  codec: leaseCodec,
}

/** A lease that passed validation and holds its subnet. */
export interface Lease {
  peerId: string
  subnet: Cidr
  value: LeaseValue
  /** ms epoch; undefined never happens for a valid lease (a lease without TTL is refused) */
  expiresAt: number
}

export type InvalidKind = 'malformed' | 'outside-network' | 'public-ip-in-network' | 'no-ttl' | 'conflict'

/** A lease record that is ignored, and why (reported by `plexctl subnets`, counted). */
export interface InvalidLease {
  key: string
  owner: string
  kind: InvalidKind
  reason: string
  subnet?: string
  /** for `conflict`: the peer whose older claim holds the subnet */
  heldBy?: string
}

export interface LeaseView {
  /** sorted by subnet */
  valid: Lease[]
  invalid: InvalidLease[]
}

/** a WireGuard key as `wg` prints it (the lease codec's pattern, src/store/schemas.ts) */
export const WG_KEY_RE = new RegExp(WG_KEY_PATTERN)
/** A claim dated further in the future than this is refused (clock skew allowance). */
export const MAX_CLAIM_SKEW_MS = 60_000

/** `a.b.c.d:port` (a WireGuard endpoint as a lease carries it), or undefined */
export function parseEndpoint(v: unknown): { address: string; port: number } | undefined {
  if (typeof v !== 'string') return undefined
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v)
  if (!m?.[1] || parseIPv4(m[1]) === undefined) return undefined
  const port = Number(m[2])
  return port >= 1 && port <= 65535 ? { address: m[1], port } : undefined
}

/**
 * A lease record that arrived from the store (outside input): its shape by
 * the store's lease codec, then the lease rules (the subnet is a CIDR, the
 * endpoint's port in range). Returns the lease, normalized (canonical subnet,
 * known backend fields only), or why not.
 */
export function parseLease(
  rec: RecordInput,
  codec: RecordCodec<LeaseValue> = leaseCodec,
): { lease: LeaseValue; subnet: Cidr } | { reason: string } {
  const decoded = codec.decode(rec)
  if (!decoded.ok) return { reason: decoded.reason }
  const v = decoded.value
  const subnet = parseCidr(v.subnet)
  if ('reason' in subnet) return { reason: `subnet: ${subnet.reason}` }
  const b = v.backend
  if (b.endpoint !== undefined && parseEndpoint(b.endpoint) === undefined)
    return { reason: 'backend.endpoint is not IPv4:port' }
  // a next key is only ever announced beside the key it replaces (the datapath's rotation, phase 1)
  if (b.nextPublicKey !== undefined && b.publicKey === undefined)
    return { reason: 'backend.nextPublicKey without a publicKey' }
  if (b.nextPublicKey !== undefined && b.nextPublicKey === b.publicKey)
    return { reason: 'backend.nextPublicKey is its publicKey' }
  const backend: LeaseValue['backend'] = { type: b.type }
  if (b.vtepMac !== undefined) backend.vtepMac = b.vtepMac
  if (b.vni !== undefined) backend.vni = b.vni
  if (b.publicKey !== undefined) backend.publicKey = b.publicKey
  if (b.nextPublicKey !== undefined) backend.nextPublicKey = b.nextPublicKey
  if (b.endpoint !== undefined) backend.endpoint = b.endpoint
  return {
    lease: {
      subnet: formatCidr(subnet.cidr),
      publicIp: v.publicIp,
      hostname: v.hostname,
      backend,
      claimedAt: v.claimedAt,
      ...(v.confirmedAt !== undefined ? { confirmedAt: v.confirmedAt } : {}),
    },
    subnet: subnet.cidr,
  }
}

/** Conflict order: the older live claim wins; equal claims go to the smaller peer id (any fixed order works, all hosts must agree). */
export function claimOrder(
  a: { peerId: string; value: { claimedAt: number } },
  b: { peerId: string; value: { claimedAt: number } },
): number {
  return a.value.claimedAt - b.value.claimedAt || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
}

/**
 * The leases that hold their subnet, from the live records under `leases/`.
 * Records that are malformed, outside the network, that put a host's public
 * address inside the cluster network, or that lack a TTL are ignored. Among
 * overlapping claims the claimOrder winner keeps the subnet and the others
 * are reported as `conflict`. Expired records have no claim at all.
 */
export function validLeases(
  records: StoreRecord[],
  cfg: NetworkConfig,
  now = Date.now(),
  keys: LeaseKeys = CLUSTER_LEASES,
): LeaseView {
  const net = networkRanges(cfg).network
  const invalid: InvalidLease[] = []
  const candidates: Lease[] = []
  for (const rec of records) {
    if (rec.tombstone || !keys.of(rec.key)) continue
    if (rec.ttlMs !== undefined && rec.version.wall + rec.ttlMs <= now) continue
    const peerId = keys.peerOf(rec.key)
    const bad = (kind: InvalidKind, reason: string, subnet?: string) =>
      invalid.push({ key: rec.key, owner: rec.owner, kind, reason, ...(subnet ? { subnet } : {}) })
    if (peerId === undefined) {
      bad('malformed', `${rec.key}: not a lease key (${keys.key('<peerId>')})`)
      continue
    }
    const parsed = parseLease(rec, keys.codec)
    if ('reason' in parsed) {
      bad('malformed', parsed.reason)
      continue
    }
    const { lease, subnet } = parsed
    if (!containsCidr(net, subnet) || subnet.prefix !== cfg.SubnetLen) {
      bad(
        'outside-network',
        `subnet ${lease.subnet} is not a /${cfg.SubnetLen} inside the network ${cfg.Network}`,
        lease.subnet,
      )
      continue
    }
    if (containsAddress(net, parseIPv4(lease.publicIp) as number)) {
      bad(
        'public-ip-in-network',
        `publicIp ${lease.publicIp} is inside the cluster network ${cfg.Network}`,
        lease.subnet,
      )
      continue
    }
    if (rec.ttlMs === undefined) {
      bad('no-ttl', 'lease has no TTL, so it would never expire', lease.subnet)
      continue
    }
    if (lease.claimedAt > rec.version.wall + MAX_CLAIM_SKEW_MS) {
      bad('malformed', 'claimedAt lies in the future of the record itself', lease.subnet)
      continue
    }
    candidates.push({ peerId, subnet, value: lease, expiresAt: rec.version.wall + rec.ttlMs })
  }
  candidates.sort(claimOrder)
  // Every candidate is a /SubnetLen inside the network, so two overlap exactly when their bases are equal.
  const holders = new Map<number, Lease>()
  const valid: Lease[] = []
  for (const c of candidates) {
    const holder = holders.get(c.subnet.base)
    if (holder) {
      invalid.push({
        key: keys.key(c.peerId),
        owner: c.peerId,
        kind: 'conflict',
        reason: `subnet ${c.value.subnet} is held by the older claim of ${holder.value.hostname} (${holder.peerId})`,
        subnet: c.value.subnet,
        heldBy: holder.peerId,
      })
    } else {
      holders.set(c.subnet.base, c)
      valid.push(c)
    }
  }
  valid.sort((a, b) => a.subnet.base - b.subnet.base)
  invalid.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return { valid, invalid }
}

/** Whether `subnet` may be claimed under the config: the right size, inside SubnetMin..SubnetMax. */
export function claimable(r: NetworkRanges, subnet: Cidr): boolean {
  return subnet.prefix === r.subnetLen && subnet.base >= r.min && subnet.base <= r.max
}

/**
 * Up to `limit` free subnets in SubnetMin..SubnetMax, lowest first, skipping
 * every subnet that overlaps a taken one. Walks the gaps between taken
 * ranges, so the cost does not grow with the size of the network.
 */
export function freeSubnets(r: NetworkRanges, taken: Cidr[], limit: number): Cidr[] {
  const step = 2 ** (32 - r.subnetLen)
  const sorted = [...taken].sort((a, b) => a.base - b.base)
  const out: Cidr[] = []
  let next = r.min
  let i = 0
  while (next <= r.max && out.length < limit) {
    const cand: Cidr = { base: next, prefix: r.subnetLen }
    while (i < sorted.length && (sorted[i] as Cidr).base + 2 ** (32 - (sorted[i] as Cidr).prefix) <= next) i++
    const t = sorted[i]
    if (t && overlaps(t, cand)) {
      // jump to the first subnet boundary past the taken range
      const end = t.base + 2 ** (32 - t.prefix)
      next = r.min + Math.ceil((end - r.min) / step) * step
      continue
    }
    out.push(cand)
    next += step
  }
  return out
}

/**
 * Picks a free subnet, at random among the first 100 free ones (as flannel
 * does) so hosts starting together rarely pick the same one. Returns why
 * not when the range is full.
 */
export function chooseSubnet(
  cfg: NetworkConfig,
  taken: Lease[],
  random: () => number = Math.random,
): { subnet: Cidr } | { reason: string } {
  const r = networkRanges(cfg)
  const free = freeSubnets(
    r,
    taken.map((l) => l.subnet),
    100,
  )
  const pick = free[Math.min(free.length - 1, Math.floor(random() * free.length))]
  if (pick) return { subnet: pick }
  const n = subnetCount(r)
  const holders = taken
    .filter((l) => l.subnet.base >= r.min && l.subnet.base <= r.max)
    .map((l) => `${l.value.subnet} ${l.value.hostname}`)
  const shown = holders.length > 5 ? `${holders.slice(0, 5).join(', ')}, ...` : holders.join(', ')
  return {
    reason: `no free subnet: all ${n} /${r.subnetLen} subnet${n === 1 ? '' : 's'} from ${formatIPv4(r.min)} to ${formatIPv4(r.max)} in ${cfg.Network} are held (${shown})`,
  }
}

/** The gateway (bridge) address of a host subnet: its first usable address. */
export function gatewayOf(subnet: Cidr): number {
  return subnet.base + 1
}

/**
 * The bridge gateway address of `peerId`'s lease as the store holds it (what
 * the agent's DNS and application listeners bind to), or undefined without a
 * lease or with a malformed one. `keys`: the cluster network's leases, or a
 * bridge network's (netLeaseKeys).
 */
export function leaseGateway(
  store: { get(key: string): StoreRecord | undefined },
  peerId: string,
  keys: LeaseKeys = CLUSTER_LEASES,
): string | undefined {
  const r = store.get(keys.key(peerId))
  if (!r) return undefined
  const parsed = parseLease(r, keys.codec)
  return 'subnet' in parsed ? formatIPv4(gatewayOf(parsed.subnet)) : undefined
}

/**
 * `PLEXUS_HTTP_ADDR` for a container on this host's overlay: its gateway and the application API's port
 * (as `CONSUL_HTTP_ADDR`, host:port), or nothing without a lease or with the API off (port 0). Tasks
 * and linked containers get it.
 */
export function appApiEnv(
  store: { get(key: string): StoreRecord | undefined },
  peerId: string,
  appPort: number | undefined,
): { PLEXUS_HTTP_ADDR?: string } {
  const gateway = appPort ? leaseGateway(store, peerId) : undefined
  return gateway ? { PLEXUS_HTTP_ADDR: `${gateway}:${appPort}` } : {}
}

/**
 * The newest time t such that a strict majority of the cluster's members
 * (this host included) has been heard from since t: the k-th newest
 * heartbeat, k = ⌊n/2⌋ + 1. Members are the hosts whose node record this host
 * holds, live or expired, until the store reaps it (`cluster.reapAfterMs`,
 * 24 h): a host cut off must never forget the others, or it would soon count
 * as a majority of one. Heard = the HLC wall of a member's newest node record,
 * or later if `heardAt` says so (a probe it answered: it was connected to us then);
 * this host holds its own records the moment it writes them, so it counts as
 * heard from at every time (+∞): a host that knows no other member is its
 * whole majority and never waits for itself, and with other members the
 * answer is theirs, as it was when this host counted as heard at `now`.
 * Pure, so the simulator checks the same rule the agent runs.
 */
export function majorityHeardSince(
  nodeRecords: StoreRecord[],
  self: string,
  now: number,
  heardAt?: ReadonlyMap<string, number>,
): number {
  const heard = [Number.POSITIVE_INFINITY]
  for (const r of nodeRecords) {
    if (r.tombstone || !r.key.startsWith(NODE_PREFIX) || r.owner === self) continue
    if (r.key.slice(NODE_PREFIX.length) !== r.owner) continue
    heard.push(Math.min(now, Math.max(r.version.wall, heardAt?.get(r.owner) ?? 0)))
  }
  heard.sort((a, b) => b - a)
  return heard[Math.floor(heard.length / 2)] as number
}

/**
 * Why an endpoint's address is not served by its owner: it lies outside every
 * valid lease the owner holds (the owner lost the subnet to an older claim, or
 * withdrew it). Undefined while it is inside. `plexctl endpoints` shows it.
 */
export function outsideLease(owner: string, ipv4: string, view: LeaseView): string | undefined {
  const addr = parseIPv4(ipv4)
  if (addr === undefined) return `address ${ipv4} is not IPv4`
  const own = view.valid.find((l) => l.peerId === owner)
  if (own && containsAddress(own.subnet, addr)) return undefined
  const holder = view.valid.find((l) => containsAddress(l.subnet, addr))
  const held = holder ? `; ${holder.value.subnet} is held by ${holder.value.hostname}` : ''
  return own ? `outside its host's subnet ${own.value.subnet}${held}` : `its host holds no valid lease${held}`
}
