import dnsPacket from 'dns-packet'
import t from 'tap'
import { CacheStage } from '../../../src/dns/cache/cache.js'
import { keyToName, keyWithin, nameToKey, parseQuery, responseTtls } from '../../../src/dns/wire.js'
import { query } from '../../helpers/dns-zone.js'

function lcg(seed: number) {
  return (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
}

function mutate(base: Buffer, rand: (n: number) => number): Buffer {
  const p = Buffer.from(base)
  for (let f = 1 + rand(8); f > 0; f--) p[rand(p.length)] = rand(256)
  if (rand(4) === 0) return p.subarray(0, rand(p.length + 1))
  if (rand(8) === 0) return Buffer.concat([p, Buffer.alloc(rand(300), rand(256))])
  return p
}

t.test('parseQuery survives 100k mutated packets and never reads past the end', async (t) => {
  const rand = lcg(7)
  const seeds = [
    query('web.svc.plexus.internal', 'A', { edns: 1232 }).buf,
    query('_http._tcp.web.svc.plexus.internal', 'SRV').buf,
    query('3.2.1.10.in-addr.arpa', 'PTR', { edns: 4096 }).buf,
  ]
  let ok = 0
  for (let i = 0; i < 100_000; i++) {
    const p = mutate(seeds[rand(seeds.length)]!, rand)
    const r = parseQuery(p, rand(2) === 0)
    if (r.ok) {
      ok++
      if (r.query.questionEnd > p.length || r.query.key.length !== r.query.nameEnd - 12)
        t.fail(`inconsistent parse of ${p.toString('hex')}`)
    }
  }
  t.ok(ok > 1000, `some mutations still parse (${ok})`)
})

t.test('parse errors carry the right rcode', async (t) => {
  const q = query('web.svc.plexus.internal', 'A').buf
  const loop = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])])
  t.match(parseQuery(loop, false), { ok: false, rcode: 1 })
  const update = Buffer.from(q)
  update.writeUInt16BE(0x2800, 2)
  t.match(parseQuery(update, false), { ok: false, rcode: 4 })
  const response = Buffer.from(q)
  response.writeUInt16BE(0x8000, 2)
  t.match(parseQuery(response, false), { ok: false, rcode: -1 })
  const twoOpt = dnsPacket.encode({
    type: 'query',
    id: 1,
    questions: [{ name: 'a', type: 'A' }],
    additionals: [
      { type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer,
      { type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer,
    ],
  })
  t.match(parseQuery(twoOpt, false), { ok: false, rcode: 1 })
})

t.test('name keys', async (t) => {
  const k = nameToKey('Web.SVC.plexus.internal.')
  t.equal(keyToName(k), 'web.svc.plexus.internal')
  t.ok(keyWithin(k, nameToKey('plexus.internal')))
  t.notOk(keyWithin(nameToKey('xplexus.internal'), nameToKey('plexus.internal')), 'label boundary')
  // length-prefixed lower-case labels, as on the wire, then the root
  t.equal(nameToKey('Web.SVC.plexus.internal.'), '\x03web\x03svc\x06plexus\x08internal\x00')
  t.equal(query('WEB.svc.plexus.internal', 'A').key, '\x03web\x03svc\x06plexus\x08internal\x00')
})

function upstreamAnswer(
  q: ReturnType<typeof query>,
  opts: { rcode?: number; ttl?: number; tc?: boolean } = {},
) {
  const rcode = opts.rcode ?? 0
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: 0x8180 | (opts.tc ? 0x200 : 0) | rcode,
    questions: [{ name: 'example.test', type: 'A' }],
    answers:
      rcode === 0 ? [{ type: 'A', name: 'example.test', ttl: opts.ttl ?? 60, data: '203.0.113.7' }] : [],
    authorities:
      rcode === 3
        ? [
            {
              type: 'SOA',
              name: 'test',
              ttl: 100,
              data: { mname: 'a', rname: 'b', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 20 },
            },
          ]
        : [],
  })
}

t.test('cache: honours TTLs, decrements them, negative answers by SOA minimum', async (t) => {
  const clock = { t: 1_000_000 }
  const cache = new CacheStage({ size: 2, maxTtl: 300, now: () => clock.t })
  let calls = 0
  const next = (q: ReturnType<typeof query>) => {
    calls++
    return upstreamAnswer(q, { ttl: 60 })
  }
  cache.handle(query('example.test', 'A'), next)
  clock.t += 10_500
  const hit = dnsPacket.decode(cache.handle(query('EXAMPLE.test', 'A', { id: 99 }), next) as Buffer)
  t.equal(calls, 1)
  t.equal(hit.id, 99)
  t.equal(hit.questions![0]!.name, 'EXAMPLE.test')
  t.equal((hit.answers![0] as { ttl: number }).ttl, 50)
  clock.t += 50_000
  cache.handle(query('example.test', 'A'), next)
  t.equal(calls, 2, 'expired')

  const nx = (q: ReturnType<typeof query>) => {
    calls++
    return upstreamAnswer(q, { rcode: 3 })
  }
  calls = 0
  cache.handle(query('nx.test', 'A'), nx)
  clock.t += 19_000
  cache.handle(query('nx.test', 'A'), nx)
  t.equal(calls, 1, 'negative answer cached')
  clock.t += 2000
  cache.handle(query('nx.test', 'A'), nx)
  t.equal(calls, 2, 'for the SOA minimum only')

  calls = 0
  const fail = (q: ReturnType<typeof query>) => {
    calls++
    return upstreamAnswer(q, { rcode: 2 })
  }
  cache.handle(query('sf.test', 'A'), fail)
  cache.handle(query('sf.test', 'A'), fail)
  t.equal(calls, 2, 'SERVFAIL is not cached')
  t.ok(cache.length <= 2, 'size bound')
})

t.test('responseTtls never throws on mutated responses', async (t) => {
  const rand = lcg(11)
  const base = upstreamAnswer(query('example.test', 'A'))
  for (let i = 0; i < 20_000; i++) responseTtls(mutate(base, rand))
  t.same(responseTtls(base)?.ttls, [60])
})
