// The live zone (what the agent serves) against a plain full build: after seeded
// random sequences of store changes, TTL records lapsing without an event, and
// updates run at once or in slices, the live table answers exactly what a fresh
// build and compile of the same records answers; so does each network's zone
// over its view of the store (src/dns/scope.ts).
import dnsPacket from 'dns-packet'
import t from 'tap'
import { seededRng } from '../../../src/cluster/sim/clock.js'
import { networkView, type ZoneSource } from '../../../src/dns/scope.js'
import { keyToName, nameToKey } from '../../../src/dns/wire.js'
import { type AnswerTable, compileZone, Encoder } from '../../../src/dns/zone/compile.js'
import { ZoneStage } from '../../../src/dns/zone/handler.js'
import { LiveZone } from '../../../src/dns/zone/live.js'
import { buildZone, type Rr } from '../../../src/dns/zone/records.js'
import { runSliced, runSteps } from '../../../src/lib/steps.js'
import { buildCatalog, type CatalogInput, catalogInput } from '../../../src/services/catalog.js'
import { isExpired } from '../../../src/store/record.js'
import type { StoreRecord } from '../../../src/store/types.js'
import { ask, data, endpoint, rec, sampleInput } from '../../helpers/dns-zone.js'

const OPTS = { origin: 'plexus.internal', ttl: 5, serial: 1, nsAddresses: ['10.244.0.1'] }
const PEERS = ['peer1', 'peer2', 'peer3']
const SERVICES = ['web', 'db', 'cache']

/** every answer of the table as sorted record texts, per name and type, sorted: orders are random, sets are not */
function canonical(table: AnswerTable): Map<string, string> {
  const out = new Map<string, string>()
  // a section is what follows the question, whose name its records at that name point to
  const records = (
    s: { rcode: number; an: number; ns: number; ar: number; body: Buffer },
    key?: string,
  ): string => {
    const question = dnsPacket.encode({
      type: 'response',
      flags: 0x0400,
      questions: [{ name: key === undefined ? OPTS.origin : keyToName(key), type: 'A' }],
    })
    question.writeUInt16BE(s.an, 6)
    question.writeUInt16BE(s.ns, 8)
    question.writeUInt16BE(s.ar, 10)
    const p = dnsPacket.decode(Buffer.concat([question, s.body]))
    const texts = (rs: dnsPacket.Answer[] | undefined) => (rs ?? []).map((r) => JSON.stringify(r)).sort()
    return JSON.stringify([s.rcode, texts(p.answers), texts(p.authorities), texts(p.additionals)])
  }
  out.set('nodata', records(table.nodata))
  out.set('nxdomain', records(table.nxdomain))
  for (const [key, e] of table.names) {
    out.set(`${key} name`, '')
    for (const [type, variants] of e.byType) {
      const sets = new Set(variants.map((v) => records(v, key)))
      out.set(`${key} ${type}`, [...sets].join(' | '))
    }
  }
  // by name: the live table holds its names in the order they came, a fresh one in build order
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)))
}

/** one random change to the records: endpoints come and go and move, join and leave services, fail checks */
function change(input: CatalogInput, rnd: () => number, now: number): void {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const peer = pick(PEERS)
  const cid = `c${Math.floor(rnd() * 12)}`
  const epKey = `endpoints/${peer}/${cid}/eth0`
  const without = (list: StoreRecord[], key: string) => list.filter((r) => r.key !== key)
  const put = (list: StoreRecord[], r: StoreRecord) => [...without(list, r.key), r]
  switch (Math.floor(rnd() * 7)) {
    case 0:
    case 1: {
      const extra: Record<string, unknown> = {
        ipv4: `10.244.${PEERS.indexOf(peer)}.${2 + Math.floor(rnd() * 6)}`,
      }
      if (rnd() < 0.3) extra.ipv6 = `fd00::${Math.floor(rnd() * 6) + 1}`
      if (rnd() < 0.7) extra.service = pick(SERVICES)
      // the same services and names across networks: each network's zone keeps its own members
      if (rnd() < 0.4) extra.network = pick(['blue', 'red'])
      if (rnd() < 0.4) extra.tags = [pick(['v1', 'v2', 'canary'])]
      // names collide on purpose sometimes: two endpoints, one name
      if (rnd() < 0.3) extra.name = `shared${Math.floor(rnd() * 2)}`
      input.endpoints = put(input.endpoints, endpoint(peer, cid, extra))
      break
    }
    case 2:
      input.endpoints = without(input.endpoints, epKey)
      break
    case 3: {
      const service = pick(SERVICES)
      const key = `registrations/${peer}/${cid}/eth0/${service}`
      input.registrations =
        rnd() < 0.6
          ? put(
              input.registrations,
              at(
                rec(
                  key,
                  { service, endpointKey: epKey, tags: [], ports: [{ port: 8080, protocol: 'tcp' }] },
                  peer,
                  // half of them are TTL registrations, lapsing while the test's clock moves on
                  rnd() < 0.5 ? 1000 + Math.floor(rnd() * 4000) : undefined,
                ),
                now,
              ),
            )
          : without(input.registrations, key)
      break
    }
    case 4: {
      const key = `health/${peer}/${cid}`
      input.health =
        rnd() < 0.7
          ? put(
              input.health,
              rec(key, {
                endpointKey: epKey,
                status: rnd() < 0.5 ? 'passing' : 'critical',
                output: '',
                checkedAt: '2026-01-01T00:00:00Z',
              }),
            )
          : without(input.health, key)
      break
    }
    case 5: {
      const name = pick(SERVICES)
      input.services =
        rnd() < 0.7
          ? put(
              input.services,
              rec(`services/${name}`, {
                name,
                tags: rnd() < 0.5 ? ['v1'] : [],
                ports: [{ name: 'http', port: rnd() < 0.5 ? 80 : 8000, protocol: 'tcp' }],
              }),
            )
          : without(input.services, `services/${name}`)
      break
    }
    default: {
      const i = PEERS.indexOf(peer)
      input.nodes = put(
        input.nodes,
        rec(`nodes/${peer}`, { name: rnd() < 0.8 ? `h${i}` : 'renamed', address: `192.0.2.${10 + i}` }),
      )
    }
  }
}

const empty = (): CatalogInput => ({ nodes: [], endpoints: [], services: [], registrations: [], health: [] })

/** a record written at `now` (the test's clock) */
function at(r: StoreRecord, now: number): StoreRecord {
  r.version = { wall: now, logical: 0 }
  return r
}

/** The records the live zone reads, as a store holds them: live ones only, by the test's clock. */
class Records {
  index = 0
  now = 1_000_000
  private held = new Map<string, StoreRecord>()

  get(key: string): StoreRecord | undefined {
    const r = this.held.get(key)
    return r && !isExpired(r, this.now) ? r : undefined
  }

  list(prefix: string): StoreRecord[] {
    return [...this.held.values()]
      .filter((r) => r.key.startsWith(prefix) && !isExpired(r, this.now))
      .sort((a, b) => (a.key < b.key ? -1 : 1))
  }

  /** holds exactly input's records; returns the keys whose record changed (a store's watch events) */
  load(input: CatalogInput): string[] {
    const next = new Map(
      Object.values(input).flatMap((rs: StoreRecord[]) => rs.map((r) => [r.key, r] as const)),
    )
    const changed = [...next.keys(), ...this.held.keys()].filter((k) => next.get(k) !== this.held.get(k))
    this.held = next
    this.index += changed.length
    return [...new Set(changed)]
  }
}

const fresh = (store: ZoneSource): Map<string, string> =>
  canonical(compileZone(buildZone(buildCatalog(catalogInput(store)), { ...OPTS, serial: store.index })))

t.test('the live zone equals a fresh build after random changes and lapsing TTLs (seeded)', async (t) => {
  const SEEDS = 40
  const STEPS = 60
  let compared = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rnd = seededRng(seed)
    const input = empty()
    const store = new Records()
    // the whole store, and each network's view of it
    const views: [string, ZoneSource][] = [
      ['all', store],
      ...['plexus', 'blue', 'red'].map((n): [string, ZoneSource] => [n, networkView(store, n)]),
    ]
    const lives = views.map(([, view]) => new LiveZone(view, () => OPTS))
    for (const live of lives) runSteps(live.update())
    for (let step = 0; step < STEPS; step++) {
      if (rnd() < 0.2) {
        // time passes, no event: TTL registrations lapse on their own
        store.now += Math.floor(rnd() * 3000)
        for (const live of lives) live.expire(store.now)
      } else {
        change(input, rnd, store.now)
        for (const key of store.load(input)) for (const live of lives) live.changed(key)
      }
      const sliced = rnd() < 0.5
      for (const [i, live] of lives.entries()) {
        if (sliced) await runSliced(live.update(), 0)
        else runSteps(live.update())
        const got = canonical(live.table)
        const want = fresh(views[i]![1])
        if (JSON.stringify([...got]) !== JSON.stringify([...want])) {
          t.same(
            [...got],
            [...want],
            `seed ${seed} step ${step} ${views[i]![0]}: the live zone differs from a fresh build`,
          )
          return
        }
        compared++
      }
    }
  }
  t.equal(compared, SEEDS * STEPS * 4, `${compared} tables compared`)
})

t.test('one change re-encodes only the names it touches; NODATA carries the new serial', async (t) => {
  const input = sampleInput()
  const store = new Records()
  store.load(input)
  const live = new LiveZone(store, () => ({ ...OPTS, nsAddresses: ['10.244.1.1'] }))
  runSteps(live.update())
  const z = new ZoneStage(live.table)
  const answers = (n: string) => live.table.names.get(nameToKey(n))
  const db = answers('db_one.ctr.plexus.internal')
  const web = answers('web.svc.plexus.internal')
  t.ok(db && web)
  input.endpoints[1] = endpoint('peer2', 'web2', { ipv4: '10.244.2.9', service: 'web' })
  const changed = store.load(input)
  t.same(changed, ['endpoints/peer2/web2/eth0'])
  live.changed(changed[0]!)
  t.ok(live.dirty)
  runSteps(live.update())
  t.notOk(live.dirty)
  t.equal(answers('db_one.ctr.plexus.internal'), db, 'an untouched name keeps its encoded answers')
  t.not(answers('web.svc.plexus.internal'), web, 'the changed service is encoded again')
  t.same(data(ask(z, 'web.svc.plexus.internal', 'A')!.msg.answers).sort(), ['10.244.1.2', '10.244.2.9'])
  t.same(data(ask(z, '9.2.244.10.in-addr.arpa', 'PTR')!.msg.answers), ['web2.ctr.plexus.internal'])
  t.equal(
    ask(z, '2.2.244.10.in-addr.arpa', 'PTR'),
    undefined,
    'the old address has no PTR: not in the zone, passed on',
  )
  const soa = ask(z, 'db_one.ctr.plexus.internal', 'AAAA')!.msg.authorities![0] as dnsPacket.SoaAnswer
  t.equal(soa.data.serial, store.index, 'NODATA of an untouched name carries the new SOA serial')
  t.equal(live.serial, store.index)
})

t.test('runSliced gives the event loop turns between slices and returns what runSteps returns', async (t) => {
  function* count(n: number): Generator<void, number, void> {
    let sum = 0
    for (let i = 0; i < n; i++) {
      sum += i
      yield
    }
    return sum
  }
  let turns = 0
  const ticker = setInterval(() => turns++, 0)
  const sliced = await runSliced(
    (function* () {
      const v = yield* count(50)
      // a slow unit: each one is its own slice at sliceMs 1
      for (let i = 0; i < 20; i++) {
        const until = performance.now() + 2
        while (performance.now() < until);
        yield
      }
      return v
    })(),
    1,
  )
  clearInterval(ticker)
  t.equal(sliced, runSteps(count(50)))
  t.ok(turns >= 5, `timers ran ${turns} times during the sliced run`)
  await t.rejects(
    runSliced(
      (function* (): Generator<void, number, void> {
        yield
        throw new Error('boom')
      })(),
      1,
    ),
    /boom/,
  )
})

/** endpoints per host in the big-service test: enough members that their service's names keep encodings */
const MEMBERS = 60

/** one host's endpoint c<i> in the big-service test (addresses collide across endpoints on purpose) */
function member(peer: string, i: number, rnd: () => number): StoreRecord {
  const p = PEERS.indexOf(peer)
  const extra: Record<string, unknown> = { ipv4: `10.244.${p}.${2 + Math.floor(rnd() * 80)}` }
  if (rnd() < 0.2) extra.ipv6 = `fd00::${p}:${Math.floor(rnd() * 40) + 1}`
  const service = rnd() < 0.8 ? pick(['web', 'db'], rnd) : undefined
  if (service) extra.service = service
  if (rnd() < 0.5) extra.tags = [pick(['v1', 'v2'], rnd)]
  return endpoint(peer, `c${i}`, extra)
}

const pick = <T>(xs: T[], rnd: () => number): T => xs[Math.floor(rnd() * xs.length)]!

const READY = { name: 'ready', type: 'tcp', port: 9000, intervalMs: 1000, timeoutMs: 500, failures: 1 }

/** an API registration of c<i> in 'api', sometimes with a check, a TTL or another host as its owner */
function apiRegistration(peer: string, i: number, rnd: () => number, now: number): StoreRecord {
  const value = {
    service: 'api',
    endpointKey: `endpoints/${peer}/c${i}/eth0`,
    tags: [`t${i % 3}`],
    ports: [{ name: 'grpc', port: 9000, protocol: 'tcp' }],
    ...(rnd() < 0.3 ? { checks: [READY] } : {}),
  }
  const owner = rnd() < 0.05 ? pick(PEERS, rnd) : peer
  return at(
    rec(`registrations/${peer}/c${i}/eth0/api`, value, owner, rnd() < 0.3 ? 1000 + rnd() * 4000 : undefined),
    now,
  )
}

/** one change to one member of a big service (it moves, leaves, joins by registration, fails a check), or to a definition, or any */
function memberChange(input: CatalogInput, rnd: () => number, now: number): void {
  const peer = pick(PEERS, rnd)
  const i = Math.floor(rnd() * MEMBERS)
  const drop = (list: StoreRecord[], key: string) => list.filter((r) => r.key !== key)
  const set = (list: StoreRecord[], r: StoreRecord) => [...drop(list, r.key), r]
  const r = rnd()
  if (r < 0.35) input.endpoints = set(input.endpoints, member(peer, i, rnd))
  else if (r < 0.45) input.endpoints = drop(input.endpoints, `endpoints/${peer}/c${i}/eth0`)
  else if (r < 0.65)
    input.registrations =
      rnd() < 0.7
        ? set(input.registrations, apiRegistration(peer, i, rnd, now))
        : drop(input.registrations, `registrations/${peer}/c${i}/eth0/api`)
  else if (r < 0.8) {
    const result = { endpointKey: `endpoints/${peer}/c${i}/eth0`, service: 'api', check: 'ready', output: '' }
    const status = rnd() < 0.8 ? 'passing' : 'critical'
    input.health = set(
      input.health,
      rec(`health/${peer}/c${i}-ready`, { ...result, status, checkedAt: '2026-01-01T00:00:00Z' }),
    )
  } else if (r < 0.88) {
    // a definition: its tags, ports and checks are every member's
    const name = pick(['web', 'db', 'api'], rnd)
    const port = pick([80, 8000], rnd)
    const value = { name, tags: rnd() < 0.5 ? ['v1'] : [], ports: [{ name: 'http', port, protocol: 'tcp' }] }
    const key = `services/${name}`
    input.services =
      rnd() < 0.2
        ? drop(input.services, key)
        : set(input.services, rec(key, rnd() < 0.2 ? { ...value, checks: [READY] } : value))
  }
  // the other changes (a node, a check result of no named check, c0-c11's endpoints)
  else change(input, rnd, now)
}

/** the first entry of two canonical tables that differs, with both sides; undefined when they are the same */
function firstDifference(got: Map<string, string>, want: Map<string, string>): string | undefined {
  for (const k of new Set([...got.keys(), ...want.keys()]))
    if (got.get(k) !== want.get(k))
      return `${k}: live ${got.get(k) ?? '(none)'}, fresh ${want.get(k) ?? '(none)'}`
  return undefined
}

t.test(
  'big services: members re-derived one by one, kept encodings reused, answers as a fresh build (seeded)',
  async (t) => {
    const SEEDS = 4
    const STEPS = 40
    let compared = 0
    // records whose encoding a changed big name took from its previous compile
    let reused = 0
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rnd = seededRng(1000 + seed)
      const store = new Records()
      const input = empty()
      input.services = [
        rec('services/web', {
          name: 'web',
          tags: ['v1'],
          ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
        }),
        rec('services/db', { name: 'db', tags: [], ports: [] }),
      ]
      for (const peer of PEERS)
        for (let i = 0; i < MEMBERS; i++) {
          input.endpoints.push(member(peer, i, rnd))
          if (rnd() < 0.5) input.registrations.push(apiRegistration(peer, i, rnd, store.now))
        }
      store.load(input)
      const live = new LiveZone(store, () => OPTS)
      runSteps(live.update())
      t.ok(
        [...live.table.names.values()].some((a) => a.encoded),
        `seed ${seed}: some names are big enough to keep their encodings`,
      )
      for (let step = 0; step < STEPS; step++) {
        if (rnd() < 0.15) {
          store.now += Math.floor(rnd() * 3000)
          live.expire(store.now)
        } else {
          for (let k = Math.floor(rnd() * 3); k >= 0; k--) memberChange(input, rnd, store.now)
          for (const key of store.load(input)) live.changed(key)
        }
        const before = new Map(live.table.names)
        if (rnd() < 0.5) runSteps(live.update())
        else await runSliced(live.update(), 0)
        for (const [key, a] of live.table.names) {
          const kept = before.get(key)?.encoded?.records
          if (a === before.get(key) || !kept || !a.encoded) continue
          const old = new Set(kept)
          reused += a.encoded.records.filter((r) => old.has(r)).length
        }
        const differs = firstDifference(canonical(live.table), fresh(store))
        if (differs)
          return t.fail(`seed ${seed} step ${step}: the live zone differs from a fresh build at ${differs}`)
        compared++
      }
    }
    t.equal(compared, SEEDS * STEPS, `${compared} tables compared`)
    t.ok(reused > 0, `${reused} records kept their encoding across a change of their name`)
  },
)

t.test('an encoding kept from the last compile is used, not made again', async (t) => {
  const name = 'a.plexus.internal'
  const r: Rr = { name, type: 'A', ttl: 5, data: '10.0.0.1' }
  const enc = new Encoder()
  enc.reuse({ records: [r], body: Buffer.from('kept'), ends: Uint32Array.of(4) }, name)
  t.equal(enc.bytes(r, name).toString(), 'kept')
  t.not(enc.bytes(r).toString(), 'kept', 'at another name (glue) the record is encoded whole')
  const kept = enc.keep([r, { ...r, data: '10.0.0.2' }], name)
  t.same([...kept.ends], [4, 4 + kept.body.length - 4])
  t.equal(kept.body.subarray(0, 4).toString(), 'kept', 'a record kept again is copied from its last encoding')
  t.same(
    [...kept.body.subarray(4, 6)],
    [0xc0, 0x0c],
    'a new record at the name starts with a pointer to the question',
  )
})
