// The contract every consumer of the replicated store codes against.
// Implementation: src/store/store.ts (issue 3). Consumers (ipam, datapath,
// dns, ports, scheduler, api) read and watch; they write only through put/delete.

/** Hybrid logical clock timestamp: wall-clock milliseconds plus a logical counter. */
export interface Hlc {
  wall: number
  logical: number
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

export interface StoreRecord {
  key: string
  /** null for a tombstone */
  value: JsonValue
  /** libp2p peer id (string form) of the host that wrote it */
  owner: string
  version: Hlc
  /** time to live in ms from version.wall; absent = no expiry */
  ttlMs?: number
  tombstone: boolean
  /** owner's signature over the canonical encoding (base64) */
  sig: string
}

export type WatchEvent = {
  type: 'put' | 'delete' | 'expire'
  key: string
  record: StoreRecord
  index: number
}

export interface PutOptions {
  ttlMs?: number
  /** compare-and-set: only write if the current record's modify index equals this (0 = must not exist) */
  cas?: number
}

/**
 * Key layout (owner-only namespaces carry the owner's peer id as second segment):
 *   nodes/<peerId>                              membership record (owned)
 *   leases/<peerId>                             host-subnet lease (owned)
 *   endpoints/<peerId>/<containerId>/<ifname>   container endpoint (owned)
 *   health/<peerId>/<cid>:<ifname>:<svc>:<check> health-check state (owned)
 *   registrations/<peerId>/<cid>/<ifname>/<svc> API service registration of an endpoint (owned)
 *   capacity/<peerId>                           what a host offers to the scheduler and what it has admitted (owned)
 *   allocs/<ownerPeerId>/<job>/<group>/<slot>   a slot placed by the job's owner (owned by the owner)
 *   allocstate/<hostPeerId>/<allocId>           the target host's verdict on an allocation and its life (owned)
 *   traffic/<peerId>                            bytes between services this host's containers started (owned; src/traffic)
 *   netleases/<peerId>/<network>                the block of a named network's range this host holds (owned; src/ipam)
 *   netmembers/<peerId>/<network>/<cid>/<ifname> a container interface on a macvlan network (owned; src/endpoints)
 *   jobs/<name>                                 job specs (any member; src/scheduler/records.ts)
 *   config/...                                  shared cluster config (any member), e.g. config/network
 *   config/networks/<name>                      a named network (macvlan) and its range (any member; src/ipam)
 *   config/wireguard-rotation                   the newest WireGuard key rotation asked of every host (any member; src/datapath)
 *   services/<name>                             shared service definitions (any member)
 *   acl/default, acl/policies/<name>            the API's access policies (operators; src/services/acl.ts)
 *   acl/tokens/<sha256 of the secret>           tokens of the TCP operator API (operators)
 *   anything else                               shared user KV (any member)
 */
export const NODE_PREFIX = 'nodes/'
export const LEASE_PREFIX = 'leases/'
export const ENDPOINT_PREFIX = 'endpoints/'
export const HEALTH_PREFIX = 'health/'
export const REGISTRATION_PREFIX = 'registrations/'
export const SERVICE_PREFIX = 'services/'
export const CAPACITY_PREFIX = 'capacity/'
export const ALLOC_PREFIX = 'allocs/'
export const ALLOC_STATE_PREFIX = 'allocstate/'
export const TRAFFIC_PREFIX = 'traffic/'
export const NET_LEASE_PREFIX = 'netleases/'
export const NET_MEMBER_PREFIX = 'netmembers/'
export const NETWORKS_PREFIX = 'config/networks/'
/** config/network-links/<from>/<to>: what `plexctl network connect` allows between two networks */
export const NETWORK_LINKS_PREFIX = 'config/network-links/'
export const ACL_PREFIX = 'acl/'
export const ACL_POLICY_PREFIX = 'acl/policies/'
export const ACL_DEFAULT_KEY = 'acl/default'
export const ACL_TOKEN_PREFIX = 'acl/tokens/'
export const JOB_PREFIX = 'jobs/'
export const DRAIN_PREFIX = 'config/drain/'
export const LABELS_PREFIX = 'config/labels/'
/** `plexctl network rotate-keys`: {generation, requestedAt} (src/datapath/backend/wireguard/rotation.ts) */
export const WIREGUARD_ROTATION_KEY = 'config/wireguard-rotation'
export const OWNED_PREFIXES = [
  NODE_PREFIX,
  LEASE_PREFIX,
  ENDPOINT_PREFIX,
  HEALTH_PREFIX,
  REGISTRATION_PREFIX,
  CAPACITY_PREFIX,
  ALLOC_PREFIX,
  ALLOC_STATE_PREFIX,
  TRAFFIC_PREFIX,
  NET_LEASE_PREFIX,
  NET_MEMBER_PREFIX,
] as const

/**
 * Keys the agents and operators manage: the owned namespaces, service
 * definitions, jobs, the network, drain and label config, the access policies.
 * An application (the application API) never writes them, whatever a policy
 * says. Written out here, below every module that owns one of them; a unit
 * test checks each owner's constant is covered.
 */
export const AGENT_KEY_PREFIXES = [
  ...OWNED_PREFIXES,
  SERVICE_PREFIX,
  ACL_PREFIX,
  JOB_PREFIX,
  'config/network',
  NETWORKS_PREFIX,
  NETWORK_LINKS_PREFIX,
  DRAIN_PREFIX,
  LABELS_PREFIX,
  WIREGUARD_ROTATION_KEY,
] as const

export interface ReadableStore {
  /** this host's peer id */
  readonly self: string
  /** monotonically increasing local change counter (for blocking queries) */
  readonly index: number
  /** live record (not a tombstone, not expired) */
  get(key: string): StoreRecord | undefined
  /** live records whose key starts with prefix, sorted by key */
  list(prefix: string): StoreRecord[]
  /** non-tombstone records under prefix, live or not (the expired heartbeat of a silent host, until reaped) */
  listHeld(prefix: string): StoreRecord[]
  /** modify index at which key last changed locally (0 if never seen) */
  modifyIndex(key: string): number
  /**
   * highest modify index under prefix, deletes and expiries included (a
   * blocking prefix query must see a delete that happened before it arrived);
   * once a dead record is reaped its index counts for every prefix, so such a
   * query may return once early but never misses a change
   */
  prefixIndex(prefix: string): number
  /**
   * every change under prefix past `index`, oldest first, as watch() would have
   * told it (a held dead record: delete or expire); `complete` is false when a
   * record past `index` was already reaped, so its change can no longer be told
   */
  changesSince(prefix: string, index: number): { events: WatchEvent[]; complete: boolean }
  /** calls fn for every change under prefix; returns an unsubscribe function */
  watch(prefix: string, fn: (ev: WatchEvent) => void): () => void
}

export interface Store extends ReadableStore {
  put(key: string, value: JsonValue, opts?: PutOptions): Promise<StoreRecord>
  /** writes a tombstone; false if there was no live record (or cas failed) */
  delete(key: string, opts?: { cas?: number }): Promise<boolean>
}
