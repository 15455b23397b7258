// The zone rebuild's faster paths against a plain full build: after seeded random
// sequences of store changes, the table compiled through the memo of the previous
// builds (what an unchanged name reuses) and in slices (what the service runs)
// answers exactly what a fresh compile of the same records answers.
import dnsPacket from 'dns-packet'
import t from 'tap'
import { seededRng } from '../../../src/cluster/sim/clock.js'
import { type AnswerTable, CompileMemo, compileSteps, compileZone } from '../../../src/dns/zone/compile.js'
import { buildZone, zoneSteps } from '../../../src/dns/zone/records.js'
import { runSliced, runSteps } from '../../../src/lib/steps.js'
import { buildCatalog, type CatalogInput, catalogSteps } from '../../../src/services/catalog.js'
import type { StoreRecord } from '../../../src/store/types.js'
import { endpoint, rec } from '../../helpers/dns-zone.js'

const OPTS = { origin: 'plexus.internal', ttl: 5, serial: 1, nsAddresses: ['10.244.0.1'] }
const PEERS = ['peer1', 'peer2', 'peer3']
const SERVICES = ['web', 'db', 'cache']

/** every answer of the table as sorted record texts, per name and type: orders are random, sets are not */
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
  for (const [key, e] of table.names) {
    out.set(`${key} nodata`, records(e.nodata))
    for (const [type, variants] of e.byType) {
      const sets = new Set(variants.map(records))
      out.set(`${key} ${type}`, [...sets].join(' | '))
    }
  }
  return out
}

/** one random change to the records: endpoints come and go and move, join and leave services, fail checks */
function change(input: CatalogInput, rnd: () => number): void {
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
              rec(key, { service, endpointKey: epKey, tags: [], ports: [{ port: 8080, protocol: 'tcp' }] }),
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

t.test('memo-compiled and sliced tables equal a fresh compile after random changes (seeded)', async (t) => {
  const SEEDS = 40
  const STEPS = 60
  let compared = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rnd = seededRng(seed)
    const input = empty()
    const memo = new CompileMemo()
    const slicedMemo = new CompileMemo()
    for (let step = 0; step < STEPS; step++) {
      change(input, rnd)
      const zone = buildZone(buildCatalog(input), OPTS)
      const fresh = canonical(compileZone(zone))
      const viaMemo = canonical(compileZone(zone, memo))
      const sliced = await runSliced(
        (function* () {
          const catalog = yield* catalogSteps(input)
          return yield* compileSteps(yield* zoneSteps(catalog, OPTS), slicedMemo)
        })(),
        0,
      )
      for (const [what, got] of [
        ['memo', viaMemo],
        ['sliced', canonical(sliced)],
      ] as const) {
        if (JSON.stringify([...got]) !== JSON.stringify([...fresh])) {
          t.same([...got], [...fresh], `seed ${seed} step ${step}: ${what} differs from a fresh compile`)
          return
        }
      }
      compared++
    }
  }
  t.equal(compared, SEEDS * STEPS, `${compared} tables compared`)
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
