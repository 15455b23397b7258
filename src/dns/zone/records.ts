// Zone records as a pure function of the service catalog: which names exist in
// plexus.internal (and the reverse names of endpoint addresses) and which
// resource records each holds. No wire format here; compile.ts encodes.
import { Address4, Address6 } from 'ip-address'
import { runSteps, STEP_EVERY, type Steps } from '../../lib/steps.js'
import type { Catalog, Member } from '../../services/catalog.js'

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
const srvId = (d: SrvData): string => `${d.port} ${d.target}`

export function buildZone(catalog: Catalog, opts: ZoneOptions): ZoneData {
  return runSteps(zoneSteps(catalog, opts))
}

/** buildZone, yielding every STEP_EVERY endpoints, members and names (src/lib/steps.ts) */
export function* zoneSteps(catalog: Catalog, opts: ZoneOptions): Steps<ZoneData> {
  let n = 0
  const { origin, ttl } = opts
  const names = new Map<string, ZoneName>()
  const at = (name: string): ZoneName => {
    let n = names.get(name)
    if (!n) {
      n = { sets: new Map(), additional: new Map() }
      names.set(name, n)
    }
    return n
  }
  // identical records twice (two endpoints, same name and address) are one; a set per list keeps this O(1)
  const seen = new Map<Rr[], Set<string>>()
  /** adds a record to name's sets, or (into additional) a record owned by rrName to name's additional section */
  const add = (
    name: string,
    type: Rr['type'],
    data: unknown,
    into: 'sets' | 'additional' = 'sets',
    rrName = name,
  ): void => {
    const m = at(name)[into]
    const list = m.get(type)
    const rr: Rr = { name: rrName, type, ttl, data }
    const id = `${rrName}\0${typeof data === 'string' ? data : srvId(data as SrvData)}`
    if (list) {
      const s = seen.get(list)!
      if (!s.has(id)) {
        s.add(id)
        list.push(rr)
      }
    } else {
      const fresh = [rr]
      m.set(type, fresh)
      seen.set(fresh, new Set([id]))
    }
  }
  const addAddress = (name: string, ipv4: string | undefined, ipv6: string | undefined): void => {
    if (ipv4) add(name, 'A', ipv4)
    if (ipv6) add(name, 'AAAA', ipv6)
  }

  const soa: Rr = {
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
  at(origin).sets.set('SOA', [soa])
  add(origin, 'NS', `ns.${origin}`)
  for (const a of opts.nsAddresses)
    addAddress(`ns.${origin}`, a.includes(':') ? undefined : a, a.includes(':') ? a : undefined)
  for (const ent of ['svc', 'ctr', 'node']) at(`${ent}.${origin}`)
  if (opts.agentAddress) add(`agent.${origin}`, 'A', opts.agentAddress)

  for (const node of catalog.nodes) {
    if (++n % STEP_EVERY === 0) yield
    const label = toLabel(node.value.name)
    if (!label) continue
    const a = node.value.address
    addAddress(
      `${label}.node.${origin}`,
      Address4.isValid(a) ? a : undefined,
      Address6.isValid(a) && !Address4.isValid(a) ? a : undefined,
    )
  }

  const ctrName = (name: string): string | undefined => {
    const label = toLabel(name)
    return label ? `${label}.ctr.${origin}` : undefined
  }
  for (const ep of catalog.endpoints) {
    if (++n % STEP_EVERY === 0) yield
    const name = ctrName(ep.value.name)
    if (!name) continue
    addAddress(name, ep.value.ipv4, ep.value.ipv6)
    for (const ip of [ep.value.ipv4, ep.value.ipv6]) {
      const rev = ip ? reverseName(ip) : undefined
      if (rev) add(rev, 'PTR', name)
    }
  }

  for (const svc of catalog.services.values()) {
    const base = `${svc.name}.svc.${origin}`
    at(base) // a defined service with no healthy endpoint answers NODATA, not NXDOMAIN
    const healthy = svc.members.filter((m) => m.healthy)
    for (const m of healthy) {
      if (++n % STEP_EVERY === 0) yield
      addAddress(base, m.ipv4, m.ipv6)
      for (const tag of m.tags) addAddress(`${tag}.${base}`, m.ipv4, m.ipv6)
      addSrv(m, base)
    }
  }

  function addSrv(m: Member, base: string): void {
    const target = ctrName(m.name)
    if (!target) return
    for (const p of m.ports) {
      const data = { priority: 0, weight: 10, port: p.port, target }
      const owners = [`_${p.port}._${p.protocol}.${base}`]
      if (p.name) owners.push(`_${p.name}._${p.protocol}.${base}`)
      for (const owner of owners) {
        add(owner, 'SRV', data)
        add(owner, 'A', m.ipv4, 'additional', target)
        if (m.ipv6) add(owner, 'AAAA', m.ipv6, 'additional', target)
      }
    }
  }

  // every ancestor of a name inside the zone exists too (RFC 8020: NODATA, never NXDOMAIN)
  for (const name of [...names.keys()]) {
    if (++n % STEP_EVERY === 0) yield
    if (!name.endsWith(`.${origin}`)) continue
    for (let n = name; n !== origin; ) {
      n = n.slice(n.indexOf('.') + 1)
      // an existing ancestor has its own chain completed (or will, on its own turn)
      if (names.has(n)) break
      at(n)
    }
  }
  return { origin, ttl, soa, names }
}
