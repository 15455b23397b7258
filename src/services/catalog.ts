// The service catalog as a pure function of store records: which endpoint is
// in which service, with which tags/ports/checks, and whether it is healthy.
// The DNS zone, the API and the health checker all read it through here, so
// they agree on membership by construction.
import { runSteps, STEP_EVERY, type Steps } from '../lib/steps.js'
import type { RecordCodec } from '../store/codec.js'
import { endpointCodec, healthCodec, nodeCodec, registrationCodec, serviceCodec } from '../store/codecs.js'
import type {
  CheckSpec,
  EndpointValue,
  HealthValue,
  NodeValue,
  PortSpec,
  RegistrationValue,
  ServiceValue,
} from '../store/records.js'
import {
  ENDPOINT_PREFIX,
  HEALTH_PREFIX,
  NODE_PREFIX,
  REGISTRATION_PREFIX,
  SERVICE_PREFIX,
  type StoreRecord,
} from '../store/types.js'

export interface Endpoint {
  key: string
  peer: string
  value: EndpointValue
}

export interface Member {
  service: string
  endpointKey: string
  peer: string
  /** node name of the endpoint's host */
  host: string
  /** container name */
  name: string
  ipv4: string
  ipv6?: string
  tags: string[]
  ports: PortSpec[]
  checks: CheckSpec[]
  /** each check's last result on the member's host; pending until its first (Consul's initial critical) */
  checkStates: { check: string; status: 'passing' | 'critical' | 'pending' }[]
  healthy: boolean
  /** how it joined: the endpoint's own service field (CNI) or an API registration */
  source: 'cni' | 'api'
  /** ms epoch when a TTL registration lapses */
  expiresAt?: number
}

export interface ServiceEntry {
  name: string
  definition?: ServiceValue
  members: Member[]
}

export interface Catalog {
  services: Map<string, ServiceEntry>
  endpoints: Endpoint[]
  nodes: { peer: string; value: NodeValue }[]
  /** records skipped because their value was malformed or written by the wrong owner */
  invalid: number
  /** earliest TTL expiry among the records used (ms epoch), so views can rebuild on time */
  nextExpiry?: number
}

export interface CatalogInput {
  nodes: StoreRecord[]
  endpoints: StoreRecord[]
  services: StoreRecord[]
  registrations: StoreRecord[]
  health: StoreRecord[]
}

function expiry(r: StoreRecord): number | undefined {
  return r.ttlMs === undefined ? undefined : r.version.wall + r.ttlMs
}

function union(a: string[], b: string[] | undefined): string[] {
  if (!b?.length) return a
  return [...new Set([...a, ...b])]
}

export function buildCatalog(input: CatalogInput): Catalog {
  return runSteps(catalogSteps(input))
}

/** buildCatalog, yielding every STEP_EVERY records (src/lib/steps.ts) */
export function* catalogSteps(input: CatalogInput): Steps<Catalog> {
  let n = 0
  let invalid = 0
  let nextExpiry: number | undefined
  const noteExpiry = (r: StoreRecord): number | undefined => {
    const e = expiry(r)
    if (e !== undefined && (nextExpiry === undefined || e < nextExpiry)) nextExpiry = e
    return e
  }
  // The codecs refuse an owned record not written by the peer its key names (the store
  // enforces this too; checking here keeps a buggy or foreign store from steering DNS).
  const decoded = <T>(r: StoreRecord, codec: RecordCodec<T>): T | undefined => {
    const v = codec.valueOf(r)
    if (v === undefined) {
      invalid++
      return undefined
    }
    noteExpiry(r)
    return v
  }

  const nodes: Catalog['nodes'] = []
  for (const r of input.nodes) {
    if (++n % STEP_EVERY === 0) yield
    const v = decoded(r, nodeCodec)
    if (v) nodes.push({ peer: r.owner, value: v })
  }

  const endpoints: Endpoint[] = []
  const byKey = new Map<string, Endpoint>()
  for (const r of input.endpoints) {
    if (++n % STEP_EVERY === 0) yield
    const v = decoded(r, endpointCodec)
    if (!v) continue
    const ep = { key: r.key, peer: r.owner, value: v }
    endpoints.push(ep)
    byKey.set(r.key, ep)
  }

  // health by endpoint key; a health record counts only from the endpoint's own host
  const health = new Map<string, HealthValue[]>()
  for (const r of input.health) {
    if (++n % STEP_EVERY === 0) yield
    const v = decoded(r, healthCodec)
    if (!v) continue
    const list = health.get(v.endpointKey)
    if (list) list.push(v)
    else health.set(v.endpointKey, [v])
  }

  const pieces = new Map<string, ServicePieces>()
  const of = (name: string): ServicePieces => {
    let p = pieces.get(name)
    if (!p) {
      p = { name, endpoints: [], registrations: [] }
      pieces.set(name, p)
    }
    return p
  }
  for (const r of input.services) {
    const v = decoded(r, serviceCodec)
    if (v) of(v.name).definition = v
  }
  for (const ep of endpoints) if (ep.value.service) of(ep.value.service).endpoints.push(ep)
  for (const r of input.registrations) {
    if (++n % STEP_EVERY === 0) yield
    const v = decoded(r, registrationCodec)
    if (!v) continue
    const ep = byKey.get(v.endpointKey)
    // a registration outlives nothing: without its endpoint it names no address
    if (!ep || ep.peer !== r.owner) continue
    of(v.service).registrations.push({ endpoint: ep, value: v, expiresAt: expiry(r) })
  }
  const services = new Map<string, ServiceEntry>()
  const healthOf = (key: string) => health.get(key)
  for (const p of pieces.values()) {
    services.set(p.name, serviceEntry(p, healthOf))
    yield
  }

  const catalog: Catalog = { services, endpoints, nodes, invalid }
  if (nextExpiry !== undefined) catalog.nextExpiry = nextExpiry
  return catalog
}

/** What one service is made of; the catalog and the live DNS zone (src/dns/zone/live.ts) both build a service from these. */
export interface ServicePieces {
  name: string
  definition?: ServiceValue
  /** endpoints whose own `service` field names it (CNI) */
  endpoints: Endpoint[]
  /** API registrations naming it whose endpoint exists and has the registration's owner */
  registrations: { endpoint: Endpoint; value: RegistrationValue; expiresAt?: number | undefined }[]
}

/** A service's members (sorted by endpoint key, so the order of the pieces does not matter) and health. */
export function serviceEntry(
  p: ServicePieces,
  health: (endpointKey: string) => HealthValue[] | undefined,
): ServiceEntry {
  const def = p.definition
  // Consul's initial state: a member with checks is critical until each of them has passed once, so
  // DNS never answers an instance that is still starting; a member without checks is healthy as it joins
  const resultsOf = (endpointKey: string) =>
    (health(endpointKey) ?? []).filter((h) => h.service === undefined || h.service === p.name)
  const healthy = (results: HealthValue[], checks: CheckSpec[]): boolean => {
    if (results.some((h) => h.status === 'critical')) return false
    return checks.every((c) => results.some((h) => h.check === c.name && h.status === 'passing'))
  }
  // endpoint key → member; an API registration for the same endpoint replaces the CNI member
  const members = new Map<string, Member>()
  const add = (
    ep: Endpoint,
    own: { tags?: string[]; ports?: PortSpec[]; checks?: CheckSpec[] },
    source: Member['source'],
    expiresAt?: number,
  ): void => {
    const checks = [...(def?.checks ?? []), ...(own.checks ?? [])]
    const results = resultsOf(ep.key)
    const m: Member = {
      service: p.name,
      endpointKey: ep.key,
      peer: ep.peer,
      host: ep.value.host,
      name: ep.value.name,
      ipv4: ep.value.ipv4,
      tags: union(def?.tags ?? [], own.tags),
      ports: own.ports?.length ? own.ports.map((x) => namedLike(x, def?.ports)) : (def?.ports ?? []),
      checks,
      checkStates: checks.map((c) => ({
        check: c.name,
        status: results.find((h) => h.check === c.name)?.status ?? 'pending',
      })),
      healthy: healthy(results, checks),
      source,
    }
    if (ep.value.ipv6) m.ipv6 = ep.value.ipv6
    if (expiresAt !== undefined) m.expiresAt = expiresAt
    members.set(ep.key, m)
  }
  for (const ep of p.endpoints) add(ep, ep.value, 'cni')
  for (const r of p.registrations) add(r.endpoint, r.value, 'api', r.expiresAt)
  const entry: ServiceEntry = {
    name: p.name,
    members: [...members.values()].sort((a, b) => (a.endpointKey < b.endpointKey ? -1 : 1)),
  }
  if (def) entry.definition = def
  return entry
}

/** the store prefixes the catalog is made from: a view kept live over it (the DNS zone) watches these */
export const CATALOG_PREFIXES = [
  NODE_PREFIX,
  ENDPOINT_PREFIX,
  SERVICE_PREFIX,
  REGISTRATION_PREFIX,
  HEALTH_PREFIX,
] as const

/** Reads everything the catalog needs from a store. */
export function catalogInput(store: { list(prefix: string): StoreRecord[] }): CatalogInput {
  return {
    nodes: store.list(NODE_PREFIX),
    endpoints: store.list(ENDPOINT_PREFIX),
    services: store.list(SERVICE_PREFIX),
    registrations: store.list(REGISTRATION_PREFIX),
    health: store.list(HEALTH_PREFIX),
  }
}

/**
 * The records that make this host's own members: its node record, endpoints,
 * registrations and health results, and every service definition (their
 * checks apply to every member). A member is its endpoint's, and only the
 * endpoint's host may register it or report its health, so the catalog of
 * these holds exactly the members of `peer`, as the whole one would, at the
 * cost of this host's records instead of the cluster's.
 */
export function localCatalogInput(
  store: { list(prefix: string): StoreRecord[] },
  peer: string,
): CatalogInput {
  return {
    nodes: store.list(`${NODE_PREFIX}${peer}`).filter((r) => r.key === `${NODE_PREFIX}${peer}`),
    endpoints: store.list(`${ENDPOINT_PREFIX}${peer}/`),
    services: store.list(SERVICE_PREFIX),
    registrations: store.list(`${REGISTRATION_PREFIX}${peer}/`),
    health: store.list(`${HEALTH_PREFIX}${peer}/`),
  }
}

/** Per-host healthy/total counts for `plexctl services`. */
export function hostCounts(e: ServiceEntry): { host: string; healthy: number; total: number }[] {
  const m = new Map<string, { host: string; healthy: number; total: number }>()
  for (const x of e.members) {
    const c = m.get(x.host) ?? { host: x.host, healthy: 0, total: 0 }
    c.total++
    if (x.healthy) c.healthy++
    m.set(x.host, c)
  }
  return [...m.values()].sort((a, b) => a.host.localeCompare(b.host))
}

/** An endpoint port without a name takes the name the service gives that port/protocol (for SRV _http._tcp). */
function namedLike(p: PortSpec, defined: PortSpec[] | undefined): PortSpec {
  if (p.name) return p
  const name = defined?.find((d) => d.port === p.port && d.protocol === p.protocol)?.name
  return name ? { ...p, name } : p
}
