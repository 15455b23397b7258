// Zone records as a pure function of the service catalog: which names exist in
// plexus.internal (and the reverse names of endpoint addresses) and which
// resource records each holds. No wire format here; compile.ts encodes.
import { Address4, Address6 } from 'ip-address'
import { runSteps, type Steps } from '../../lib/steps.js'
import type { Catalog, ServiceEntry } from '../../services/catalog.js'
import type { EndpointValue, NodeValue } from '../../store/records.js'

export interface Rr {
  name: string
  type: 'A' | 'AAAA' | 'SRV' | 'PTR' | 'SOA' | 'NS'
  ttl: number
  // biome-ignore lint/suspicious/noExplicitAny: dns-packet's record data is a per-type union
  data: any
}

export interface ZoneOptions {
  /** the zone apex, lower-case, no trailing dot */
  origin: string
  ttl: number
  /** SOA serial: changes whenever the zone does */
  serial: number
  /** this server's own addresses (the glue of ns.<origin>) */
  nsAddresses: string[]
  /**
   * `agent.<origin>`: this host's bridge gateway, where its application API
   * listens. A container asks its own host's server (its resolver is its
   * gateway), so each agent answering with its own gateway is the asker's.
   */
  agentAddress?: string
}

/** A name and its record sets; `shuffle` marks sets whose order is randomised per answer. */
export interface ZoneName {
  sets: Map<Rr['type'], Rr[]>
  /** additional-section records per type (A/AAAA of SRV targets) */
  additional: Map<Rr['type'], Rr[]>
}

export interface ZoneData {
  origin: string
  ttl: number
  soa: Rr
  /** lower-case dotted name → records; a name with no sets is an empty non-terminal (NODATA, not NXDOMAIN) */
  names: Map<string, ZoneName>
}

/** Any text as one DNS label: lower-case, [a-z0-9-_], ≤ 63 characters; '' if nothing is left. */
export function toLabel(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
}

export function reverseName(ip: string): string | undefined {
  if (Address4.isValid(ip)) return new Address4(ip).reverseForm().replace(/\.$/, '')
  if (Address6.isValid(ip)) return new Address6(ip).reverseForm().replace(/\.$/, '')
  return undefined
}

interface SrvData {
  port: number
  target: string
}
export const recordId = (rrName: string, data: unknown): string =>
  `${rrName}\0${typeof data === 'string' ? data : `${(data as SrvData).port} ${(data as SrvData).target}`}`

/** a record's place in a source: the name it is under, the section, its type and id */
export const reuseKey = (name: string, into: 'sets' | 'additional', type: Rr['type'], id: string): string =>
  `${name}\0${into}\0${type}\0${id}`

const emptyName = (): ZoneName => ({ sets: new Map(), additional: new Map() })

/**
 * Names and their record sets as one source (the apex, a node, an endpoint, a
 * service) contributes them, or a whole zone: identical records (same owner
 * name and data) are kept once.
 */
export class NameSets {
  readonly names = new Map<string, ZoneName>()
  // per record list, the ids in it: keeps the dedupe O(1)
  private readonly seen = new Map<Rr[], Set<string>>()

  /**
   * @param previous the records this source held before, by `reuseKey`: an
   * unchanged record keeps its object, so its encoding is kept (compile.ts
   * Encoder) and an unchanged name compares equal by identity (live.ts)
   */
  constructor(
    readonly ttl: number,
    private readonly previous?: Map<string, Rr>,
  ) {}

  /** the name, created empty if absent (an empty name answers NODATA, not NXDOMAIN) */
  at(name: string): ZoneName {
    let n = this.names.get(name)
    if (!n) {
      n = emptyName()
      this.names.set(name, n)
    }
    return n
  }

  /** a record to name's sets, or (into additional) a record owned by rrName to name's additional section */
  add(
    name: string,
    type: Rr['type'],
    data: unknown,
    into: 'sets' | 'additional' = 'sets',
    rrName = name,
  ): void {
    const id = recordId(rrName, data)
    const rr = this.previous?.get(reuseKey(name, into, type, id))
    this.push(
      this.at(name)[into],
      rr?.ttl === this.ttl ? rr : { name: rrName, type, ttl: this.ttl, data },
      id,
    )
  }

  /** every set of zn into name's */
  addAll(name: string, zn: ZoneName): void {
    this.at(name) // an empty name stays a name
    for (const into of ['sets', 'additional'] as const)
      for (const list of zn[into].values()) for (const r of list) this.addRecord(name, into, r)
  }

  /** an existing record (its object kept) into name's section */
  addRecord(name: string, into: 'sets' | 'additional', r: Rr): void {
    this.push(this.at(name)[into], r, recordId(r.name, r.data))
  }

  addAddress(name: string, ipv4: string | undefined, ipv6: string | undefined): void {
    if (ipv4) this.add(name, 'A', ipv4)
    if (ipv6) this.add(name, 'AAAA', ipv6)
  }

  /** rr into its type's list unless a record of the same id (recordId) is there */
  private push(m: Map<Rr['type'], Rr[]>, rr: Rr, id: string): void {
    const list = m.get(rr.type)
    if (!list) {
      const fresh = [rr]
      m.set(rr.type, fresh)
      this.seen.set(fresh, new Set([id]))
      return
    }
    const s = this.seen.get(list)!
    if (!s.has(id)) {
      s.add(id)
      list.push(rr)
    }
  }
}

export function soaRecord(opts: ZoneOptions): Rr {
  const { origin, ttl } = opts
  return {
    name: origin,
    type: 'SOA',
    ttl,
    data: {
      mname: `ns.${origin}`,
      rname: `hostmaster.${origin}`,
      serial: opts.serial >>> 0,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      // negative answers are cached for min(SOA TTL, minimum) (RFC 2308): keep it the zone TTL
      minimum: ttl,
    },
  }
}

/** the apex (SOA, NS and its glue), the svc/ctr/node parents and agent.<origin> */
export function apexRecords(z: NameSets, opts: ZoneOptions): void {
  const { origin } = opts
  z.at(origin).sets.set('SOA', [soaRecord(opts)])
  z.add(origin, 'NS', `ns.${origin}`)
  for (const a of opts.nsAddresses)
    z.addAddress(`ns.${origin}`, a.includes(':') ? undefined : a, a.includes(':') ? a : undefined)
  for (const ent of ['svc', 'ctr', 'node']) z.at(`${ent}.${origin}`)
  if (opts.agentAddress) z.add(`agent.${origin}`, 'A', opts.agentAddress)
}

/** <host>.node.<origin> */
export function nodeRecords(z: NameSets, node: NodeValue, origin: string): void {
  const label = toLabel(node.name)
  if (!label) return
  const a = node.address
  z.addAddress(
    `${label}.node.${origin}`,
    Address4.isValid(a) ? a : undefined,
    Address6.isValid(a) && !Address4.isValid(a) ? a : undefined,
  )
}

function ctrName(name: string, origin: string): string | undefined {
  const label = toLabel(name)
  return label ? `${label}.ctr.${origin}` : undefined
}

/** <container>.ctr.<origin> and the reverse names of its addresses */
export function endpointRecords(z: NameSets, ep: EndpointValue, origin: string): void {
  const name = ctrName(ep.name, origin)
  if (!name) return
  z.addAddress(name, ep.ipv4, ep.ipv6)
  for (const ip of [ep.ipv4, ep.ipv6]) {
    const rev = ip ? reverseName(ip) : undefined
    if (rev) z.add(rev, 'PTR', name)
  }
}

/** members of a service between two yields: a service of a thousand members is tens of milliseconds */
export const MEMBERS_PER_STEP = 64

/** <svc>.svc.<origin>, its tag names and SRV names, from its healthy members (yields, src/lib/steps.ts) */
export function* serviceRecords(z: NameSets, svc: ServiceEntry, origin: string): Steps<void> {
  const base = `${svc.name}.svc.${origin}`
  z.at(base) // a defined service with no healthy endpoint answers NODATA, not NXDOMAIN
  let n = 0
  for (const m of svc.members) {
    if (++n % MEMBERS_PER_STEP === 0) yield
    if (!m.healthy) continue
    z.addAddress(base, m.ipv4, m.ipv6)
    for (const tag of m.tags) z.addAddress(`${tag}.${base}`, m.ipv4, m.ipv6)
    const target = ctrName(m.name, origin)
    if (!target) continue
    for (const p of m.ports) {
      const data = { priority: 0, weight: 10, port: p.port, target }
      const owners = [`_${p.port}._${p.protocol}.${base}`]
      if (p.name) owners.push(`_${p.name}._${p.protocol}.${base}`)
      for (const owner of owners) {
        z.add(owner, 'SRV', data)
        z.add(owner, 'A', m.ipv4, 'additional', target)
        if (m.ipv6) z.add(owner, 'AAAA', m.ipv6, 'additional', target)
      }
    }
  }
}

/** the names between name and origin, nearest first (none for a name outside the zone: reverse names) */
export function ancestors(name: string, origin: string): string[] {
  const out: string[] = []
  if (!name.endsWith(`.${origin}`)) return out
  for (let n = name; n !== origin; ) {
    n = n.slice(n.indexOf('.') + 1)
    out.push(n)
  }
  return out
}

/** The whole zone at once (tests, explain's reference); the agent keeps a live one (live.ts). */
export function buildZone(catalog: Catalog, opts: ZoneOptions): ZoneData {
  const z = new NameSets(opts.ttl)
  apexRecords(z, opts)
  for (const node of catalog.nodes) nodeRecords(z, node.value, opts.origin)
  for (const ep of catalog.endpoints) endpointRecords(z, ep.value, opts.origin)
  for (const svc of catalog.services.values()) runSteps(serviceRecords(z, svc, opts.origin))
  // every ancestor of a name inside the zone exists too (RFC 8020: NODATA, never NXDOMAIN)
  for (const name of [...z.names.keys()]) for (const a of ancestors(name, opts.origin)) z.at(a)
  return {
    origin: opts.origin,
    ttl: opts.ttl,
    soa: z.names.get(opts.origin)!.sets.get('SOA')![0]!,
    names: z.names,
  }
}
