// The zone kept live from the store: a store change re-derives only the
// sources it touches (the apex, a node, an endpoint, a service) and re-encodes
// only the names whose records changed, then patches the answer table in one
// synchronous step. At 50,000 records a full build takes seconds; one change
// re-encodes a handful of names (issue 22, bench/zone). Within a service only
// the members a change touches are re-derived, and a big name's unchanged
// records keep their encoding (compile.ts `Encoded`).
//
// A source is what one piece of the store adds to the zone (records.ts): a
// name can have several (two endpoints with one container name), and the
// names between a name and the apex exist while anything is below them
// (RFC 8020: NODATA, never NXDOMAIN). The result equals buildZone +
// compileZone over the same records (test/unit/dns/zone-live.test.ts checks
// it over random change sequences).
import { runSteps, STEP_EVERY, type Steps } from '../../lib/steps.js'
import { CATALOG_PREFIXES, type Endpoint, type ServicePieces, serviceEntry } from '../../services/catalog.js'
import { endpointCodec, healthCodec, nodeCodec, registrationCodec, serviceCodec } from '../../store/codecs.js'
import { expiresAt } from '../../store/record.js'
import type { HealthValue, NodeValue, RegistrationValue, ServiceValue } from '../../store/records.js'
import {
  ENDPOINT_PREFIX,
  HEALTH_PREFIX,
  NODE_PREFIX,
  REGISTRATION_PREFIX,
  type ReadableStore,
  SERVICE_PREFIX,
} from '../../store/types.js'
import { nameToKey } from '../wire.js'
import {
  type AnswerTable,
  compileName,
  Encoder,
  glueFrom,
  type NameAnswers,
  negativeAnswers,
} from './compile.js'
import {
  ancestors,
  apexRecords,
  endpointRecords,
  MEMBERS_PER_STEP,
  NameSets,
  nodeRecords,
  type Rr,
  recordId,
  reuseKey,
  serviceRecords,
  soaRecord,
  type ZoneName,
  type ZoneOptions,
} from './records.js'

/** what the apex is made of, read at each change (the gateway address comes with the host's lease) */
export type ApexOptions = Omit<ZoneOptions, 'serial'>

/** 'apex', or a prefix and a store key or service name: 'n:' node, 'e:' endpoint, 's:' service */
type Source = string
const APEX: Source = 'apex'

/** a registration and its owner (the catalog takes it only from its endpoint's host) */
interface Registration {
  owner: string
  value: RegistrationValue
}

/**
 * The records a service member adds, flat: a record alone is in the sets of
 * its own name; a name followed by a record puts that record in the name's
 * additional section (an SRV target's address under the SRV name). An object
 * of name, section and record each was 11 MB of an agent holding 50,000
 * registrations (250,000 records; heap snapshot, bench/converge's size run).
 */
type MemberRecords = (Rr | string)[]

/** calls fn with each record of a member's list, the name it is under and its section (no tuple per record: this runs over every member of a service on each update) */
function eachMemberRecord(
  list: MemberRecords,
  fn: (at: string, into: 'sets' | 'additional', rr: Rr) => void,
): void {
  for (let i = 0; i < list.length; i++) {
    const x = list[i]!
    if (typeof x !== 'string') fn(x.name, 'sets', x)
    else fn(x, 'additional', list[++i] as Rr)
  }
}

/**
 * service → endpoint key → the keys of that member's registrations: one as
 * itself, a Set only from the second. Nearly every member has one; a Set
 * each and a joined service-and-endpoint key were about 300 bytes a
 * registration, 9 MB of an agent holding 30,000 (heap snapshot).
 */
type RegsOfMember = Map<string, Map<string, string | Set<string>>>

function addMember(m: RegsOfMember, service: string, endpointKey: string, key: string): void {
  let of = m.get(service)
  if (!of) {
    of = new Map()
    m.set(service, of)
  }
  const x = of.get(endpointKey)
  if (x === undefined) of.set(endpointKey, key)
  else if (typeof x !== 'string') x.add(key)
  else if (x !== key) of.set(endpointKey, new Set([x, key]))
}

function removeMember(m: RegsOfMember, service: string, endpointKey: string, key: string): void {
  const of = m.get(service)
  const x = of?.get(endpointKey)
  if (x === key) of!.delete(endpointKey)
  else if (typeof x === 'object' && x.delete(key) && x.size === 1)
    of!.set(endpointKey, x.values().next().value!)
  if (of?.size === 0) m.delete(service)
}

const membersRegs = (m: RegsOfMember, service: string, endpointKey: string): string[] => {
  const x = m.get(service)?.get(endpointKey)
  return x === undefined ? [] : typeof x === 'string' ? [x] : [...x]
}

const addTo = <K, V>(m: Map<K, Set<V>>, k: K, v: V): void => {
  const s = m.get(k)
  if (s) s.add(v)
  else m.set(k, new Set([v]))
}
const removeFrom = <K, V>(m: Map<K, Set<V>>, k: K, v: V): void => {
  const s = m.get(k)
  if (s?.delete(v) && s.size === 0) m.delete(k)
}

/** the same record objects in the same order: a re-derived source reuses the objects of unchanged records */
function sameName(a: ZoneName | undefined, b: ZoneName | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined) return a === b
  for (const into of ['sets', 'additional'] as const) {
    if (a[into].size !== b[into].size) return false
    for (const [type, list] of a[into]) {
      const other = b[into].get(type)
      if (other?.length !== list.length) return false
      for (let i = 0; i < list.length; i++) if (list[i] !== other[i]) return false
    }
  }
  return true
}

/** a source's records by reuseKey (yields every STEP_EVERY records) */
function* byReuseKey(names: Map<string, ZoneName>): Steps<Map<string, Rr>> {
  const out = new Map<string, Rr>()
  let n = 0
  for (const [name, zn] of names)
    for (const into of ['sets', 'additional'] as const)
      for (const [type, list] of zn[into])
        for (const r of list) {
          if (++n % STEP_EVERY === 0) yield
          out.set(reuseKey(name, into, type, recordId(r.name, r.data)), r)
        }
  return out
}

export class LiveZone {
  /** the answers; its names are patched in place, at the end of each update */
  readonly table: AnswerTable
  /** the zone's names and records as buildZone would make them */
  readonly names = new Map<string, ZoneName>()
  /** the SOA serial of the table: the store's index when the last update began */
  serial = 0

  // the records in use, decoded, by store key (services by name: a definition's key is its name)
  private readonly nodes = new Map<string, NodeValue>()
  private readonly endpoints = new Map<string, Endpoint>()
  private readonly definitions = new Map<string, ServiceValue>()
  private readonly registrations = new Map<string, Registration>()
  private readonly health = new Map<string, HealthValue>()
  // who refers to whom: service → endpoint keys (CNI) and registration keys, endpoint → registrations, health
  private readonly cniMembers = new Map<string, Set<string>>()
  private readonly regsOfService = new Map<string, Set<string>>()
  private readonly regsOfEndpoint = new Map<string, Set<string>>()
  /** registrations by member (service, then endpoint): deriving one member reads its own, not every registration of its endpoint (1,000 at bench/converge's size run) */
  private readonly regsOfMember: RegsOfMember = new Map()
  private readonly healthOfEndpoint = new Map<string, Set<string>>()
  /** key → when its record lapses (TTL records leave without a store event) */
  private readonly expiries = new Map<string, number>()
  /** service → endpoint key → what that member adds (nothing when it is unhealthy: it still makes the service exist) */
  private readonly members = new Map<string, Map<string, MemberRecords>>()
  /**
   * One string per name the members' records use (a service's names, its
   * members' container names): each member derived its own copies, 7 MB at
   * 50,000 registrations (heap snapshot). A name leaves with its last record.
   */
  private readonly nameStrings = new Map<string, string>()
  /** service → the members the running update re-derives ('all': the definition changed, every one) */
  private readonly memberWork = new Map<string, Set<string> | 'all'>()

  /** what each source adds, by name; which sources a name has; how many named names are below a name */
  private readonly contrib = new Map<Source, Map<string, ZoneName>>()
  private readonly owners = new Map<string, Set<Source>>()
  private readonly below = new Map<string, number>()

  private readonly pending = new Set<string>()
  /** the next update starts from nothing and reads every record (the first, and after a failed one) */
  private full = true
  private apexPending = true
  private readonly origin: string
  /** apex() as the running update read it once */
  private apexNow: ApexOptions

  constructor(
    private readonly store: Pick<ReadableStore, 'index' | 'get' | 'list'>,
    private readonly apex: () => ApexOptions,
  ) {
    const opts = apex()
    this.apexNow = opts
    this.origin = opts.origin
    const neg = negativeAnswers(new Encoder(), soaRecord({ ...opts, serial: 0 }))
    this.table = { originKey: nameToKey(this.origin), names: new Map(), ...neg, size: { names: 0, bytes: 0 } }
  }

  /** the next update reads every record (the first, and after a failed one) */
  get fullPending(): boolean {
    return this.full
  }

  /** something waits for the next update */
  get dirty(): boolean {
    return this.full || this.apexPending || this.pending.size > 0
  }

  /** the record at key (under CATALOG_PREFIXES) changed */
  changed(key: string): void {
    this.pending.add(key)
  }

  /** what apex() returns changed (this host's lease: the gateway address) */
  changedApex(): void {
    this.apexPending = true
  }

  /** forget everything: the next update reads every record again (after an update failed halfway) */
  resync(): void {
    this.full = true
  }

  /** when the earliest TTL record in use lapses (ms epoch) */
  nextExpiry(): number | undefined {
    let next: number | undefined
    for (const at of this.expiries.values()) if (next === undefined || at < next) next = at
    return next
  }

  /** records that lapsed by now count as changed */
  expire(now: number): void {
    for (const [key, at] of this.expiries) if (at <= now) this.pending.add(key)
  }

  /**
   * Brings the table up to the store: yields between units of work
   * (src/lib/steps.ts); the table changes only in its last, synchronous step.
   * Changes that arrive meanwhile wait for the next update (`dirty`).
   */
  *update(): Steps<void> {
    const serial = this.store.index
    this.apexNow = this.apex()
    const full = this.full
    this.full = false
    this.apexPending = false
    let keys: Iterable<string>
    if (full) {
      this.reset()
      keys = CATALOG_PREFIXES.flatMap((p) => this.store.list(p).map((r) => r.key))
    } else keys = [...this.pending]
    this.pending.clear()

    let n = 0
    const sources = new Set<Source>([APEX])
    for (const key of keys) {
      if (++n % STEP_EVERY === 0) yield
      this.reread(key, sources)
    }
    // a source or a name is a unit of its own: a service of a thousand members takes tens of milliseconds
    const dirty = new Set<string>()
    for (const src of sources) {
      yield
      yield* this.rederive(src, serial, dirty)
    }

    const enc = new Encoder()
    const glue = glueFrom(this.names)
    const compiled = new Map<string, NameAnswers | undefined>()
    for (const name of dirty) {
      yield
      const key = nameToKey(name)
      const zn = this.names.get(name)
      compiled.set(key, zn ? yield* compileName(name, zn, enc, glue, this.table.names.get(key)) : undefined)
    }
    const soa = this.names.get(this.origin)!.sets.get('SOA')![0]!
    this.patch(compiled, negativeAnswers(enc, soa), full)
    this.serial = serial
  }

  private reset(): void {
    for (const m of [
      this.nodes,
      this.endpoints,
      this.definitions,
      this.registrations,
      this.health,
      this.cniMembers,
      this.regsOfService,
      this.regsOfEndpoint,
      this.regsOfMember,
      this.healthOfEndpoint,
      this.expiries,
      this.members,
      this.memberWork,
      this.contrib,
      this.owners,
      this.below,
      this.names,
      this.nameStrings,
    ] as Map<unknown, unknown>[])
      m.clear()
  }

  /** the table gets the compiled names at once; a full update also drops every name it did not make */
  private patch(
    compiled: Map<string, NameAnswers | undefined>,
    neg: ReturnType<typeof negativeAnswers>,
    full: boolean,
  ) {
    const t = this.table
    let bytes = t.size.bytes - t.nodata.body.length - t.nxdomain.body.length
    for (const [key, a] of compiled) {
      const prev = t.names.get(key)
      if (prev) bytes -= prev.bytes
      if (a) {
        t.names.set(key, a)
        bytes += a.bytes
      } else t.names.delete(key)
    }
    if (full) {
      const kept = new Set([...this.names.keys()].map(nameToKey))
      for (const [key, a] of t.names)
        if (!kept.has(key)) {
          t.names.delete(key)
          bytes -= a.bytes
        }
    }
    t.nodata = neg.nodata
    t.nxdomain = neg.nxdomain
    t.size = { names: t.names.size, bytes: bytes + neg.nodata.body.length + neg.nxdomain.body.length }
  }

  /** reads key from the store into the indexes; adds the sources whose records it may change */
  private reread(key: string, sources: Set<Source>): void {
    const r = this.store.get(key)
    const at = r ? expiresAt(r) : undefined
    if (at === undefined) this.expiries.delete(key)
    else this.expiries.set(key, at)

    if (key.startsWith(NODE_PREFIX)) {
      const v = r && nodeCodec.valueOf(r)
      if (v) this.nodes.set(key, v)
      else this.nodes.delete(key)
      sources.add(`n:${key}`)
    } else if (key.startsWith(ENDPOINT_PREFIX)) {
      // the services it was in and is in now (its registrations name it: they gain or lose their address)
      this.servicesOf(key, sources)
      const old = this.endpoints.get(key)
      const v = r && endpointCodec.valueOf(r)
      if (old?.value.service) removeFrom(this.cniMembers, old.value.service, key)
      if (v && r) {
        this.endpoints.set(key, { key, peer: r.owner, value: v })
        if (v.service) addTo(this.cniMembers, v.service, key)
      } else this.endpoints.delete(key)
      this.servicesOf(key, sources)
      sources.add(`e:${key}`)
    } else if (key.startsWith(SERVICE_PREFIX)) {
      const name = key.slice(SERVICE_PREFIX.length)
      const v = r && serviceCodec.valueOf(r)
      if (v) this.definitions.set(name, v)
      else this.definitions.delete(name)
      this.touch(name, sources) // its tags, ports and checks are every member's
    } else if (key.startsWith(REGISTRATION_PREFIX)) {
      const old = this.registrations.get(key)
      if (old) {
        removeFrom(this.regsOfService, old.value.service, key)
        removeFrom(this.regsOfEndpoint, old.value.endpointKey, key)
        removeMember(this.regsOfMember, old.value.service, old.value.endpointKey, key)
        this.touch(old.value.service, sources, old.value.endpointKey)
      }
      const v = r && registrationCodec.valueOf(r)
      if (v && r) {
        this.registrations.set(key, { owner: r.owner, value: v })
        addTo(this.regsOfService, v.service, key)
        addTo(this.regsOfEndpoint, v.endpointKey, key)
        addMember(this.regsOfMember, v.service, v.endpointKey, key)
        this.touch(v.service, sources, v.endpointKey)
      } else this.registrations.delete(key)
    } else if (key.startsWith(HEALTH_PREFIX)) {
      const old = this.health.get(key)
      if (old) {
        removeFrom(this.healthOfEndpoint, old.endpointKey, key)
        this.servicesOf(old.endpointKey, sources)
      }
      const v = r && healthCodec.valueOf(r)
      if (v) {
        this.health.set(key, v)
        addTo(this.healthOfEndpoint, v.endpointKey, key)
        this.servicesOf(v.endpointKey, sources)
      } else this.health.delete(key)
    }
  }

  /** the endpoint's membership of the services it is in (its own service field, its registrations) */
  private servicesOf(endpointKey: string, sources: Set<Source>): void {
    const service = this.endpoints.get(endpointKey)?.value.service
    if (service) this.touch(service, sources, endpointKey)
    for (const reg of this.regsOfEndpoint.get(endpointKey) ?? [])
      this.touch(this.registrations.get(reg)!.value.service, sources, endpointKey)
  }

  /** the service's member at endpointKey (without one: all its members) is re-derived by this update */
  private touch(service: string, sources: Set<Source>, endpointKey?: string): void {
    sources.add(`s:${service}`)
    const work = this.memberWork.get(service)
    if (work === 'all') return
    if (endpointKey === undefined) this.memberWork.set(service, 'all')
    else if (work) work.add(endpointKey)
    else this.memberWork.set(service, new Set([endpointKey]))
  }

  /** what the source adds now, from the indexes */
  private *records(src: Source, serial: number, before: Map<string, ZoneName>): Steps<Map<string, ZoneName>> {
    const id = src.slice(2)
    if (src.startsWith('s:')) return yield* this.service(id, before)
    const z = new NameSets(this.apexNow.ttl, yield* byReuseKey(before))
    if (src === APEX) apexRecords(z, { ...this.apexNow, serial })
    else if (src.startsWith('n:')) {
      const node = this.nodes.get(id)
      if (node) nodeRecords(z, node, this.origin)
    } else {
      const ep = this.endpoints.get(id)
      if (ep) endpointRecords(z, ep.value, this.origin)
    }
    return z.names
  }

  /**
   * A service's names: the members this update touched are re-derived one by
   * one, then the names they had or have are merged again from every member;
   * the service's other names keep their objects. Re-deriving the whole
   * service took half of a one-change update at 1,200 members (bench/zone).
   */
  private *service(name: string, before: Map<string, ZoneName>): Steps<Map<string, ZoneName>> {
    const members = this.members.get(name) ?? new Map<string, MemberRecords>()
    const work = this.memberWork.get(name) ?? 'all'
    this.memberWork.delete(name)
    const keys =
      work === 'all'
        ? new Set([
            ...members.keys(),
            ...(this.cniMembers.get(name) ?? []),
            ...[...(this.regsOfService.get(name) ?? [])].map(
              (k) => this.registrations.get(k)!.value.endpointKey,
            ),
          ])
        : work
    const base = `${name}.svc.${this.origin}`
    const touched = new Set([base])
    let n = 0
    const touch = (at: string): void => void touched.add(at)
    for (const key of keys) {
      if (++n % MEMBERS_PER_STEP === 0) yield
      const old = members.get(key)
      if (old) eachMemberRecord(old, touch)
      const now = this.memberRecords(name, key, old)
      if (now) {
        members.set(key, now)
        eachMemberRecord(now, touch)
      } else members.delete(key)
    }
    if (members.size) this.members.set(name, members)
    else this.members.delete(name)
    // the catalog has the service while it has a definition or a member (healthy or not)
    if (!members.size && !this.definitions.has(name)) return new Map()

    // in endpoint key order, as serviceEntry orders members: each set comes out as a full build makes it
    const z = new NameSets(this.apexNow.ttl)
    z.at(base) // a defined service with no healthy member answers NODATA, not NXDOMAIN
    n = 0
    const addTouched = (at: string, into: 'sets' | 'additional', rr: Rr): void => {
      if (touched.has(at)) z.addRecord(at, into, rr)
    }
    for (const key of [...members.keys()].sort()) {
      if (++n % STEP_EVERY === 0) yield
      eachMemberRecord(members.get(key)!, addTouched)
    }
    const after = new Map(before)
    for (const t of touched) after.delete(t)
    for (const [t, zn] of z.names) after.set(t, zn)
    return after
  }

  /**
   * What the member at endpointKey adds to the service: serviceEntry and
   * serviceRecords over that member alone (a member is made of its endpoint,
   * its registrations, its health results and the definition, nothing of
   * another member's). Unchanged records keep their objects. Undefined when the
   * catalog would have no such member.
   */
  private memberRecords(
    service: string,
    endpointKey: string,
    old?: MemberRecords,
  ): MemberRecords | undefined {
    const ep = this.endpoints.get(endpointKey)
    if (!ep) return undefined
    const p: ServicePieces = { name: service, endpoints: [], registrations: [] }
    const def = this.definitions.get(service)
    if (def) p.definition = def
    if (ep.value.service === service) p.endpoints.push(ep)
    // in key order, as the catalog reads them: of two for one endpoint, the later key wins
    for (const key of membersRegs(this.regsOfMember, service, endpointKey).sort()) {
      const reg = this.registrations.get(key)!
      // a registration counts only from its endpoint's host
      if (ep.peer === reg.owner)
        p.registrations.push({ endpoint: ep, value: reg.value, expiresAt: this.expiries.get(key) })
    }
    if (!p.endpoints.length && !p.registrations.length) return undefined

    let previous: Map<string, Rr> | undefined
    if (old?.length) {
      const kept = new Map<string, Rr>()
      eachMemberRecord(old, (at, into, rr) =>
        kept.set(reuseKey(at, into, rr.type, recordId(rr.name, rr.data)), rr),
      )
      previous = kept
    }
    const z = new NameSets(this.apexNow.ttl, previous)
    runSteps(
      serviceRecords(
        z,
        serviceEntry(p, (k) => this.healthResults(k)),
        this.origin,
      ),
    )
    const out: MemberRecords = []
    for (const [name, zn] of z.names) {
      const at = this.intern(name)
      // a set's records are owned by the name they are under (NameSets.add): the record alone says both
      for (const list of zn.sets.values())
        for (const rr of list) {
          this.internRecord(rr)
          out.push(rr)
        }
      for (const list of zn.additional.values())
        for (const rr of list) {
          this.internRecord(rr)
          out.push(at, rr)
        }
    }
    // a copy of its own size: a pushed-to array keeps room to grow
    return out.slice()
  }

  private intern(s: string): string {
    const had = this.nameStrings.get(s)
    if (had !== undefined) return had
    this.nameStrings.set(s, s)
    return s
  }

  /** the record's names as the shared strings (the same text: a record kept from the last derivation has them) */
  private internRecord(rr: Rr): void {
    rr.name = this.intern(rr.name)
    if (rr.type === 'SRV') rr.data.target = this.intern(rr.data.target)
  }

  private healthResults(endpointKey: string): HealthValue[] | undefined {
    const keys = this.healthOfEndpoint.get(endpointKey)
    return keys && [...keys].map((k) => this.health.get(k)!)
  }

  /** re-derives src; the names whose records changed go into dirty, and their merged records into names */
  private *rederive(src: Source, serial: number, dirty: Set<string>): Steps<void> {
    const before = this.contrib.get(src) ?? new Map<string, ZoneName>()
    const after = yield* this.records(src, serial, before)
    if (after.size) this.contrib.set(src, after)
    else this.contrib.delete(src)
    const touched: string[] = []
    for (const [name, zn] of before) {
      if (after.has(name)) {
        if (!sameName(zn, after.get(name))) touched.push(name)
        continue
      }
      touched.push(name)
      const owners = this.owners.get(name)!
      owners.delete(src)
      if (owners.size === 0) {
        this.owners.delete(name)
        for (const a of ancestors(name, this.origin)) {
          const left = this.below.get(a)! - 1
          if (left) this.below.set(a, left)
          else {
            this.below.delete(a)
            touched.push(a)
          }
        }
      }
    }
    for (const name of after.keys()) {
      if (before.has(name)) continue
      touched.push(name)
      const owners = this.owners.get(name)
      if (owners) {
        owners.add(src)
        continue
      }
      this.owners.set(name, new Set([src]))
      for (const a of ancestors(name, this.origin)) {
        const was = this.below.get(a) ?? 0
        this.below.set(a, was + 1)
        if (!was) touched.push(a)
      }
    }
    for (const name of touched) {
      dirty.add(name)
      const merged = this.merged(name)
      if (merged) this.names.set(name, merged)
      else {
        this.names.delete(name)
        this.nameStrings.delete(name)
      }
    }
  }

  /** name's records from all its sources; an empty name when only names below it exist; undefined when none */
  private merged(name: string): ZoneName | undefined {
    const owners = this.owners.get(name)
    if (!owners) return this.below.has(name) ? { sets: new Map(), additional: new Map() } : undefined
    if (owners.size === 1) return this.contrib.get(owners.values().next().value!)!.get(name)!
    const z = new NameSets(this.apexNow.ttl)
    for (const src of [...owners].sort()) z.addAll(name, this.contrib.get(src)!.get(name)!)
    return z.names.get(name)!
  }
}
