// The live zone (what the agent serves) against a plain full build: after seeded
// random sequences of store changes, TTL records lapsing without an event, and
// updates run at once or in slices, the live table answers exactly what a fresh
// build and compile of the same records answers.
import dnsPacket from 'dns-packet'
import t from 'tap'
import { seededRng } from '../../../src/cluster/sim/clock.js'
import { nameToKey } from '../../../src/dns/wire.js'
import { type AnswerTable, compileZone } from '../../../src/dns/zone/compile.js'
import { ZoneStage } from '../../../src/dns/zone/handler.js'
import { LiveZone } from '../../../src/dns/zone/live.js'
import { buildZone } from '../../../src/dns/zone/records.js'
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
  const records = (s: { rcode: number; an: number; ns: number; ar: number; body: Buffer }): string => {
    const header = Buffer.alloc(12)
    header.writeUInt16BE(0x8400, 2)
    header.writeUInt16BE(s.an, 6)
    header.writeUInt16BE(s.ns, 8)
    header.writeUInt16BE(s.ar, 10)
    const p = dnsPacket.decode(Buffer.concat([header, s.body]))
    const texts = (rs: dnsPacket.Answer[] | undefined) => (rs ?? []).map((r) => JSON.stringify(r)).sort()
    return JSON.stringify([s.rcode, texts(p.answers), texts(p.authorities), texts(p.additionals)])
  }
  out.set('nodata', records(table.nodata))
  out.set('nxdomain', records(table.nxdomain))
  for (const [key, e] of table.names) {
    out.set(`${key} name`, '')
    for (const [type, variants] of e.byType) {
      const sets = new Set(variants.map(records))
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

const fresh = (store: Records): Map<string, string> =>
  canonical(compileZone(buildZone(buildCatalog(catalogInput(store)), { ...OPTS, serial: store.index })))

t.test('the live zone equals a fresh build after random changes and lapsing TTLs (seeded)', async (t) => {
  const SEEDS = 40
  const STEPS = 60
  let compared = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rnd = seededRng(seed)
    const input = empty()
    const store = new Records()
    const live = new LiveZone(store, () => OPTS)
    runSteps(live.update())
    for (let step = 0; step < STEPS; step++) {
      if (rnd() < 0.2) {
        // time passes, no event: TTL registrations lapse on their own
        store.now += Math.floor(rnd() * 3000)
        live.expire(store.now)
      } else {
        change(input, rnd, store.now)
        for (const key of store.load(input)) live.changed(key)
      }
      if (rnd() < 0.5) runSteps(live.update())
      else await runSliced(live.update(), 0)
      const got = canonical(live.table)
      const want = fresh(store)
      if (JSON.stringify([...got]) !== JSON.stringify([...want])) {
        t.same([...got], [...want], `seed ${seed} step ${step}: the live zone differs from a fresh build`)
        return
      }
      compared++
    }
  }
  t.equal(compared, SEEDS * STEPS, `${compared} tables compared`)
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
