// Pure: what `plexctl trace SRC DST` names, resolved against the store. A
// container (name, id or id prefix of 12+, address), a host (name), or an
// address inside some host's subnet. The store is what Plexus intended;
// the kernel readers (kernel.ts) then show what each host actually has.
import { cidrOf, containsAddress, parseIPv4 } from '../../ipam/cidr.js'
import { PlexusError } from '../../lib/errors.js'
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

type Obj = Record<string, unknown>
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {})
const str = (v: unknown) => (typeof v === 'string' ? v : undefined)
const ownerOf = (key: string, prefix: string) => key.slice(prefix.length).split('/')[0] ?? ''

export function recordsOf(store: { list(prefix: string): StoreRecord[] }): Records {
  return {
    endpoints: store.list(ENDPOINT_PREFIX),
    leases: store.list(LEASE_PREFIX),
    nodes: store.list(NODE_PREFIX),
  }
}

export function hostNameOf(r: Records, peer: string): string {
  const n = r.nodes.find((x) => ownerOf(x.key, NODE_PREFIX) === peer)
  return str(obj(n?.value).name) ?? peer
}

/** the lease whose subnet holds ip (the host that owns that address) */
export function leaseFor(r: Records, ip: string): { peer: string; key: string; value: Obj } | undefined {
  const n = parseIPv4(ip)
  if (n === undefined) return undefined
  for (const l of r.leases) {
    const subnet = str(obj(l.value).subnet)
    if (!subnet) continue
    try {
      if (containsAddress(cidrOf(subnet), n))
        return { peer: ownerOf(l.key, LEASE_PREFIX), key: l.key, value: obj(l.value) }
    } catch {
      // a malformed lease holds no address
    }
  }
  return undefined
}

function gatewayOf(subnet: string): string | undefined {
  const base = parseIPv4(subnet.split('/')[0] ?? '')
  if (base === undefined) return undefined
  return [24, 16, 8, 0].map((s) => ((base + 1) >>> s) & 255).join('.')
}

function containerPlace(r: Records, named: string, e: StoreRecord): Place {
  const v = obj(e.value)
  const peer = ownerOf(e.key, ENDPOINT_PREFIX)
  return {
    kind: 'container',
    named,
    peer,
    host: str(v.host) ?? hostNameOf(r, peer),
    ip: str(v.ipv4) ?? '',
    endpointKey: e.key,
    ...(str(v.name) ? { name: str(v.name) as string } : {}),
  }
}

/** resolves one name; PLX_TRACE_UNKNOWN when nothing in the store matches, PLX_TRACE_AMBIGUOUS when several do */
export function resolvePlace(r: Records, named: string): Place {
  const text = named.trim()
  const byName = r.endpoints.filter((e) => {
    const v = obj(e.value)
    const id = str(v.containerId) ?? ''
    return v.name === text || id === text || (text.length >= 12 && id.startsWith(text)) || v.ipv4 === text
  })
  if (byName.length > 1)
    throw new PlexusError(
      'PLX_TRACE_AMBIGUOUS',
      `"${text}" names ${byName.length} containers: give the container id`,
    )
  if (byName[0]) return containerPlace(r, text, byName[0])
  const node = r.nodes.find((n) => obj(n.value).name === text || ownerOf(n.key, NODE_PREFIX) === text)
  if (node) {
    const peer = ownerOf(node.key, NODE_PREFIX)
    const lease = r.leases.find((l) => ownerOf(l.key, LEASE_PREFIX) === peer)
    const gw = gatewayOf(str(obj(lease?.value).subnet) ?? '')
    if (!gw)
      throw new PlexusError(
        'PLX_TRACE_UNKNOWN',
        `host ${text} holds no subnet lease: nothing to trace to or from`,
      )
    return { kind: 'host', named: text, peer, host: hostNameOf(r, peer), ip: gw }
  }
  if (parseIPv4(text) !== undefined) {
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
