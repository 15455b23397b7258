// Pure: what `plexctl trace SRC DST` names, resolved against the store. A
// container (name, id or id prefix of 12+, address), a host (name), or an
// address inside some host's subnet. The store is what Plexus intended;
// the kernel readers (kernel.ts) then show what each host actually has.
import { type Cidr, containsAddress, formatIPv4, parseIPv4 } from '../../ipam/cidr.js'
import { gatewayOf, parseLease } from '../../ipam/leases.js'
import { PlexusError } from '../../lib/errors.js'
import { endpointCodec, nodeCodec } from '../../store/codecs.js'
import type { EndpointValue, LeaseValue } from '../../store/records.js'
import { ENDPOINT_PREFIX, LEASE_PREFIX, NODE_PREFIX, type StoreRecord } from '../../store/types.js'

export interface Place {
  kind: 'container' | 'host' | 'address'
  /** what the user typed, for messages */
  named: string
  /** peer id of the host it is on (or is) */
  peer: string
  /** that host's name */
  host: string
  /** the address packets carry: the container's, or the host's bridge gateway */
  ip: string
  /** container: its endpoint record's key (the host looks the rest up in its own store) */
  endpointKey?: string
  /** container: its name */
  name?: string
}

interface Records {
  endpoints: StoreRecord[]
  leases: StoreRecord[]
  nodes: StoreRecord[]
}

export function recordsOf(store: { list(prefix: string): StoreRecord[] }): Records {
  return {
    endpoints: store.list(ENDPOINT_PREFIX),
    leases: store.list(LEASE_PREFIX),
    nodes: store.list(NODE_PREFIX),
  }
}

/** a lease as trace reads it: its holder, its record and its subnet */
export interface TraceLease {
  peer: string
  key: string
  value: LeaseValue
  subnet: Cidr
}

// records from gossip: each is decoded (src/store/codecs.ts, src/ipam/leases.ts) and one that does not decode names nothing
const endpointsOf = (r: Records) =>
  r.endpoints.flatMap((e) => {
    const value = endpointCodec.valueOf(e)
    return value ? [{ key: e.key, peer: e.owner, value }] : []
  })
const leasesOf = (r: Pick<Records, 'leases'>): TraceLease[] =>
  r.leases.flatMap((l) => {
    const parsed = parseLease(l)
    return 'lease' in parsed
      ? [{ peer: l.owner, key: l.key, value: parsed.lease, subnet: parsed.subnet }]
      : []
  })

export function hostNameOf(r: Records, peer: string): string {
  const n = r.nodes.find((x) => x.owner === peer && x.key === `${NODE_PREFIX}${peer}`)
  return (n && nodeCodec.valueOf(n)?.name) ?? peer
}

/** the lease whose subnet holds ip (the host that owns that address) */
export function leaseFor(r: Pick<Records, 'leases'>, ip: string): TraceLease | undefined {
  const n = parseIPv4(ip)
  return n === undefined ? undefined : leasesOf(r).find((l) => containsAddress(l.subnet, n))
}

function containerPlace(
  r: Records,
  named: string,
  e: { key: string; peer: string; value: EndpointValue },
): Place {
  return {
    kind: 'container',
    named,
    peer: e.peer,
    host: e.value.host || hostNameOf(r, e.peer),
    ip: e.value.ipv4,
    endpointKey: e.key,
    name: e.value.name,
  }
}

/** resolves one name; PLX_TRACE_UNKNOWN when nothing in the store matches, PLX_TRACE_AMBIGUOUS when several do */
export function resolvePlace(r: Records, named: string): Place {
  const text = named.trim()
  const byName = endpointsOf(r).filter(({ value: v }) => {
    const id = v.containerId
    return v.name === text || id === text || (text.length >= 12 && id.startsWith(text)) || v.ipv4 === text
  })
  if (byName.length > 1)
    throw new PlexusError(
      'PLX_TRACE_AMBIGUOUS',
      `"${text}" names ${byName.length} containers: give the container id`,
    )
  if (byName[0]) return containerPlace(r, text, byName[0])
  const node = r.nodes.find((n) => nodeCodec.valueOf(n)?.name === text || n.key === `${NODE_PREFIX}${text}`)
  if (node) {
    const peer = node.owner
    const lease = leasesOf(r).find((l) => l.peer === peer)
    if (!lease)
      throw new PlexusError(
        'PLX_TRACE_UNKNOWN',
        `host ${text} holds no subnet lease: nothing to trace to or from`,
      )
    return {
      kind: 'host',
      named: text,
      peer,
      host: hostNameOf(r, peer),
      ip: formatIPv4(gatewayOf(lease.subnet)),
    }
  }
  if (parseIPv4(text) !== undefined) {
    // a host's underlay address (a name of the form <host>.node.plexus.internal answers it)
    const holder = leasesOf(r).find((l) => l.value.publicIp === text)
    if (holder)
      return {
        kind: 'host',
        named: text,
        peer: holder.peer,
        host: hostNameOf(r, holder.peer),
        ip: formatIPv4(gatewayOf(holder.subnet)),
      }
    const lease = leaseFor(r, text)
    if (lease)
      return { kind: 'address', named: text, peer: lease.peer, host: hostNameOf(r, lease.peer), ip: text }
  }
  throw new PlexusError(
    'PLX_TRACE_UNKNOWN',
    `"${text}" is no container, host or cluster address this agent knows`,
    { status: 404 },
  )
}

/** a port published on a host: the container it is DNAT'd to and the address other hosts send to */
export interface PublishedTarget {
  endpointKey: string
  /** the host address the mapping takes (its hostIp, else the host's underlay address) */
  hostIp: string
  containerIp: string
  containerPort: number
}

/** the mapping of `port`/`proto` among the endpoint records of the host at `peer` (src/ports/publish.ts) */
export function publishedOn(
  r: Records,
  peer: string,
  port: number,
  proto: string,
): PublishedTarget | undefined {
  const lease = leasesOf(r).find((l) => l.peer === peer)
  for (const e of endpointsOf(r)) {
    if (e.peer !== peer) continue
    const m = e.value.published?.find((p) => p.hostPort === port && p.protocol === proto)
    const hostIp = m?.hostIp && m.hostIp !== '0.0.0.0' ? m.hostIp : lease?.value.publicIp
    if (m && hostIp)
      return { endpointKey: e.key, hostIp, containerIp: e.value.ipv4, containerPort: m.containerPort }
  }
  return undefined
}

/** the address a packet from `src` carries when it reaches another host's underlay address */
export function arrivingSource(r: Records, src: Place, ipMasq: boolean): string {
  if (src.kind !== 'host' && !ipMasq) return src.ip
  return leasesOf(r).find((l) => l.peer === src.peer)?.value.publicIp ?? src.ip
}
