// Which names a DNS asker sees (issue 17 item 2), as Docker's embedded DNS
// scopes them: a container resolves the names of the networks it is on, and a
// name of any other network is NXDOMAIN, as one that does not exist. Pure: the
// service feeds it store records and asks it per query.
//
// Each network has its own zone, built from a view of the store in which the
// endpoint records of other networks do not exist (networkView): a service
// member, an API registration and a health result follow their endpoint, so
// the catalog of that view holds exactly the network's members. An asker is
// known by its source address (the datapath's anti-spoofing rules pin a
// container to its own addresses): the address → its endpoint → every
// network of its container, so a container on two networks resolves both.
import { CLUSTER_NETWORK_NAME } from '../ipam/bridge.js'
import { type Cidr, containsAddress, parseCidr, parseIPv4 } from '../ipam/cidr.js'
import type { BridgeNetworkValue, EndpointValue } from '../store/records.js'
import { ENDPOINT_PREFIX, type ReadableStore, type StoreRecord } from '../store/types.js'

/** what a live zone reads of the store */
export type ZoneSource = Pick<ReadableStore, 'index' | 'get' | 'list'>

/** the network an endpoint record is on: its `network`, or the cluster network's name */
export function networkOf(r: StoreRecord): string {
  // read raw: a record whose field is not a string does not decode, and the zone leaves it out anyway
  const v = r.value as { network?: unknown } | null
  return typeof v?.network === 'string' ? v.network : CLUSTER_NETWORK_NAME
}

/** The store as network `network`'s zone sees it: the endpoint records of other networks are not there. */
export function networkView(store: ZoneSource, network: string): ZoneSource {
  const visible = (r: StoreRecord): boolean => !r.key.startsWith(ENDPOINT_PREFIX) || networkOf(r) === network
  return {
    get index() {
      return store.index
    },
    get: (key) => {
      const r = store.get(key)
      return r && visible(r) ? r : undefined
    },
    // only endpoint records differ between networks: any other listing (registrations: 50,000 at
    // bench/converge's size) is the store's own, not a copy per network's zone
    list: (prefix) =>
      prefix.startsWith(ENDPOINT_PREFIX) || ENDPOINT_PREFIX.startsWith(prefix)
        ? store.list(prefix).filter(visible)
        : store.list(prefix),
  }
}

/** What one asker sees: the networks whose names it resolves, in order (the first that has a name answers it). */
export interface Scope {
  /** the same for the same networks and forwarding: what the service keeps one chain per */
  key: string
  networks: string[]
  /**
   * names outside the zone are forwarded upstream unless every network of the
   * asker is internal (no route out: as Docker, an internal network resolves
   * its own names only)
   */
  forward: boolean
}

export interface AskerInput {
  /** this host's endpoint records (the containers that ask this server) */
  endpoints: Pick<EndpointValue, 'containerId' | 'ifname' | 'ipv4' | 'network'>[]
  /** every bridge network */
  networks: Pick<BridgeNetworkValue, 'name' | 'cidr' | 'internal'>[]
}

/** Finds an asker's scope by its source address. */
export interface Askers {
  /** the networks a zone is kept for: the cluster network, every bridge network, any network a local container is on */
  readonly networks: string[]
  /** by IPv4 address as an unsigned integer (the UDP path's META_PEER4) */
  ofV4(address: number): Scope
  /** by address text (TCP's remoteAddress) */
  of(address: string): Scope
}

/**
 * The scopes of askers from what this host holds. A local container's address
 * sees its container's networks, the one it asked from first; another address
 * inside a bridge network's cidr (a container of another host, or one not yet
 * recorded) sees that network; everything else (the cluster network's
 * containers, the host, IPv6: bridge networks are IPv4 only) the cluster network.
 */
export function askerScopes(input: AskerInput): Askers {
  const internal = new Map(input.networks.map((n) => [n.name, n.internal === true]))
  const scopes = new Map<string, Scope>()
  const scope = (networks: string[]): Scope => {
    const forward = networks.some((n) => !internal.get(n))
    const key = `${networks.join(',')}${forward ? '' : ' internal'}`
    const known = scopes.get(key)
    if (known) return known
    const s = { key, networks, forward }
    scopes.set(key, s)
    return s
  }
  const cluster = scope([CLUSTER_NETWORK_NAME])

  const subnets: { cidr: Cidr; scope: Scope }[] = []
  for (const n of input.networks) {
    const c = parseCidr(n.cidr)
    if ('cidr' in c) subnets.push({ cidr: c.cidr, scope: scope([n.name]) })
  }

  const byContainer = new Map<string, AskerInput['endpoints']>()
  for (const e of input.endpoints) {
    const list = byContainer.get(e.containerId)
    if (list) list.push(e)
    else byContainer.set(e.containerId, [e])
  }
  const byV4 = new Map<number, Scope>()
  for (const list of byContainer.values()) {
    list.sort((a, b) => (a.ifname < b.ifname ? -1 : 1))
    const all = [...new Set(list.map((e) => e.network ?? CLUSTER_NETWORK_NAME))]
    for (const e of list) {
      const addr = parseIPv4(e.ipv4)
      if (addr === undefined) continue
      const own = e.network ?? CLUSTER_NETWORK_NAME
      byV4.set(addr, scope([own, ...all.filter((n) => n !== own)]))
    }
  }

  const networks = [
    ...new Set([
      CLUSTER_NETWORK_NAME,
      ...input.networks.map((n) => n.name),
      ...input.endpoints.map((e) => e.network ?? CLUSTER_NETWORK_NAME),
    ]),
  ]
  const ofV4 = (address: number): Scope => {
    const known = byV4.get(address)
    if (known) return known
    for (const s of subnets) if (containsAddress(s.cidr, address)) return s.scope
    return cluster
  }
  return {
    networks,
    ofV4,
    of: (address) => {
      // TCP over an IPv4 socket may name the peer IPv4-mapped
      const v4 = parseIPv4(address.startsWith('::ffff:') ? address.slice(7) : address)
      return v4 === undefined ? cluster : ofV4(v4)
    },
  }
}
