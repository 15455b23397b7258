// The DNS server end to end on loopback ports inside a throwaway namespace:
// conformance with dig and dns-packet, forwarding to stub upstreams, tracking
// the store, hostile input and a fuzz run. See test/helpers/own-netns.ts.
import { execFile, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pino } from 'pino'
import t from 'tap'
import { defaultConfig } from '../../src/agent/config.js'
import { defaultDnsConfig } from '../../src/dns/config.js'
import { DnsService, queryServer } from '../../src/dns/service.js'
import { udpAddon } from '../../src/dns/udp.js'
import { Metrics } from '../../src/lib/metrics.js'
import type { JsonValue } from '../../src/store/types.js'
import { REPO } from '../helpers/fixture.js'
import { ownNetns } from '../helpers/own-netns.js'
import { newStore } from '../unit/store/helpers.js'

await ownNetns(import.meta.url, 'plxdns')

const PORT = 5300
const run = promisify(execFile)
const STUB = join(REPO, 'dist/netns-fixtures/stub-dns.js')

async function stub(listen: string, args: string[] = []) {
  const p = spawn(process.execPath, [STUB, '--listen', listen, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
    p.on('exit', (c) => reject(new Error(`stub-dns exited ${c}`)))
  })
  t.teardown(() => {
    p.kill()
  })
  return p
}

await stub('127.0.0.2:5353', ['--record', 'example.test=203.0.113.7'])
await stub('127.0.0.3:5353', ['--mode', 'silent'])

// the store on the real clock, so TTLs and the zone's expiry timers agree
const { store, signer } = await newStore({
  now: {
    get t() {
      return Date.now()
    },
  },
})
const self = signer.self

function endpoint(cid: string, ip: string, extra: Record<string, JsonValue> = {}) {
  return store.put(`endpoints/${self}/${cid}/eth0`, {
    containerId: cid,
    ifname: 'eth0',
    name: cid,
    host: 'h1',
    ipv4: ip,
    mac: '02:00:00:00:00:01',
    netns: `/run/netns/${cid}`,
    hostVeth: 'veth0',
    labels: {},
    createdAt: new Date().toISOString(),
    ...extra,
  })
}

await store.put(`nodes/${self}`, { name: 'h1', address: '192.0.2.11' } as JsonValue)
await store.put('services/web', {
  name: 'web',
  tags: [],
  ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
})
await endpoint('web1', '10.244.1.2', { service: 'web', ipv6: 'fd00::2' })
await endpoint('web2', '10.244.1.3', { service: 'web', tags: ['canary'] })
for (let i = 0; i < 120; i++) await endpoint(`big${i}`, `10.244.7.${i + 1}`, { service: 'big' })

function service(dns: Partial<ReturnType<typeof defaultDnsConfig>>, port = PORT) {
  const config = {
    ...defaultConfig(),
    name: 'h1',
    dns: {
      ...defaultDnsConfig(),
      listenGateway: false,
      listen: ['127.0.0.1'],
      port,
      upstreamTimeoutMs: 300,
      ...dns,
    },
  }
  return new DnsService({
    config,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    store,
    peerId: self,
  })
}

const dns = service({ upstreams: ['127.0.0.3:5353', '127.0.0.2:5353'] })
await dns.start()
t.teardown(() => dns.stop())

// async: the server under test runs in this very process, a blocking spawn would starve it
async function dig(...args: string[]): Promise<string> {
  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(PORT),
    '+time=2',
    '+tries=1',
    ...args,
  ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
  return stdout
}
const status = (out: string) => /status: (\w+)/.exec(out)?.[1]
const count = (out: string, section: string) => Number(new RegExp(`${section}: (\\d+)`).exec(out)?.[1])
const short = async (...args: string[]) =>
  (await dig('+short', ...args)).trim().split('\n').filter(Boolean).sort()

t.test('A, AAAA, tags, mixed case and trailing dots', async (t) => {
  t.same(await short('web.svc.plexus.internal'), ['10.244.1.2', '10.244.1.3'])
  t.same(await short('AAAA', 'web.svc.plexus.internal'), ['fd00::2'])
  t.same(await short('canary.web.svc.plexus.internal'), ['10.244.1.3'])
  const out = await dig('WeB.SVC.plexus.INTERNAL.')
  t.equal(status(out), 'NOERROR')
  t.match(out, /;WeB\.SVC\.plexus\.INTERNAL\.\s+IN\s+A/, 'question echoed with the asked case')
  t.match(out, / aa[ ;]/, 'authoritative')
  t.same(await short('web1.ctr.plexus.internal'), ['10.244.1.2'])
  t.same(await short('h1.node.plexus.internal'), ['192.0.2.11'])
})

t.test('SRV with additional addresses, PTR, SOA, NS, ANY', async (t) => {
  const srv = await dig('SRV', '_http._tcp.web.svc.plexus.internal')
  t.equal(count(srv, 'ANSWER'), 2)
  t.equal(count(srv, 'ADDITIONAL'), 4, 'A of both targets, AAAA of one, OPT')
  t.same(await short('-x', '10.244.1.3'), ['web2.ctr.plexus.internal.'])
  t.same(await short('-x', 'fd00::2'), ['web1.ctr.plexus.internal.'])
  t.match(
    (await short('SOA', 'plexus.internal'))[0],
    /^ns\.plexus\.internal\. hostmaster\.plexus\.internal\. \d+ 3600 600 86400 5$/,
  )
  t.same(await short('NS', 'plexus.internal'), ['ns.plexus.internal.'])
  t.equal(count(await dig('ANY', 'web.svc.plexus.internal'), 'ANSWER'), 3)
})

t.test('NXDOMAIN vs NODATA, unknown types', async (t) => {
  const nx = await dig('nope.svc.plexus.internal')
  t.equal(status(nx), 'NXDOMAIN')
  t.equal(count(nx, 'AUTHORITY'), 1)
  for (const args of [
    ['MX', 'web.svc.plexus.internal'],
    ['A', 'svc.plexus.internal'],
    ['TYPE65000', 'web.svc.plexus.internal'],
  ]) {
    const out = await dig(...args)
    t.equal(status(out), 'NOERROR', args.join(' '))
    t.equal(count(out, 'ANSWER'), 0)
    t.match(out, /plexus\.internal\.\s+\d+\s+IN\s+SOA/)
  }
  t.equal(status(await dig('+edns=1', '+noednsnegotiation', 'web.svc.plexus.internal')), 'BADVERS')
})

t.test('truncation over UDP, full answer over TCP', async (t) => {
  const tc = await dig('+ignore', '+noedns', 'big.svc.plexus.internal')
  t.match(tc, /flags: qr aa tc rd ra/)
  t.equal(count(tc, 'ANSWER'), 0)
  t.equal(count(await dig('big.svc.plexus.internal'), 'ANSWER'), 120, 'dig retried over TCP')
  t.equal(count(await dig('+tcp', 'big.svc.plexus.internal'), 'ANSWER'), 120)
  const decoded = await queryServer('127.0.0.1', PORT, '_http._tcp.web.svc.plexus.internal', 'SRV', 2000)
  t.equal(decoded.rcode, 'NOERROR')
  t.equal(decoded.answers.length, 2)
  // 120 A records do not fit EDNS's 1,232 bytes: `plexctl dns query` asks again over TCP, as dig does
  const big = await queryServer('127.0.0.1', PORT, 'big.svc.plexus.internal', 'A', 2000)
  t.equal(big.answers.length, 120, 'queryServer retried a truncated answer over TCP')
  t.notOk(big.flags.includes('tc'))
})

t.test('forwarding: failover past a silent upstream, NXDOMAIN passes, cache, TCP', async (t) => {
  const before = dns.status().stats
  t.same(await short('example.test'), ['203.0.113.7'])
  t.equal(status(await dig('nothere.test')), 'NXDOMAIN')
  t.same(await short('EXAMPLE.test'), ['203.0.113.7'])
  const after = dns.status().stats
  t.ok(after.cacheHits > before.cacheHits, 'second lookup from the cache')
  t.same(await short('+tcp', 'other.example.test'), [])
  t.equal(status(await dig('+tcp', 'example.test')), 'NOERROR')
})

t.test('all upstreams failing is SERVFAIL, never silence; in-flight cap', async (t) => {
  const dead = service({ upstreams: ['127.0.0.3:5353'], maxInFlight: 1, cacheSize: 0 }, PORT + 1)
  await dead.start()
  t.teardown(() => dead.stop())
  const q = (name: string) => queryServer('127.0.0.1', PORT + 1, name, 'A', 3000)
  const started = Date.now()
  const [a, b] = await Promise.all([q('one.test'), q('two.test')])
  t.same([a.rcode, b.rcode], ['SERVFAIL', 'SERVFAIL'])
  t.ok(Date.now() - started < 1500, 'within the upstream timeout')
  t.equal(dead.status().stats.overloaded, 1)
})

t.test('answers track the store within 1 s', async (t) => {
  await endpoint('api1', '10.244.1.9', { service: 'api' })
  const wait = async (want: string[]) => {
    const until = Date.now() + 1000
    while (Date.now() < until) {
      if (JSON.stringify(await short('api.svc.plexus.internal')) === JSON.stringify(want)) return true
      await new Promise((r) => setTimeout(r, 50))
    }
    return false
  }
  t.ok(await wait(['10.244.1.9']), 'new endpoint answers')
  await store.put(`health/${self}/api1:eth0:api:up`, {
    endpointKey: `endpoints/${self}/api1/eth0`,
    service: 'api',
    check: 'up',
    status: 'critical',
    output: 'refused',
    checkedAt: new Date().toISOString(),
  })
  t.ok(await wait([]), 'unhealthy endpoint leaves')
  await store.delete(`health/${self}/api1:eth0:api:up`)
  t.ok(await wait(['10.244.1.9']), 'and comes back')
})

t.test('a TTL registration leaves the zone when it lapses, with no store event', async (t) => {
  await endpoint('ttl1', '10.244.1.20')
  await store.put(
    `registrations/${self}/ttl1/eth0/lapsing`,
    { service: 'lapsing', endpointKey: `endpoints/${self}/ttl1/eth0`, tags: [], ports: [] },
    { ttlMs: 1500 },
  )
  const lapse = Date.now() + 1500
  const answers = () => short('lapsing.svc.plexus.internal')
  const until = Date.now() + 1000
  while (Date.now() < until && (await answers()).length === 0) await new Promise((r) => setTimeout(r, 50))
  t.same(await answers(), ['10.244.1.20'], 'the registration answers')
  // nothing writes or deletes it: the store only stops listing it, the zone drops it on its expiry timer.
  // Polled until gone, 2 s at most (a busy test machine delays a timer by more than a fixed margin);
  // how late it went is reported, and the bound is what makes a zone that never drops it fail
  while (Date.now() < lapse + 2000 && (await answers()).length) await new Promise((r) => setTimeout(r, 25))
  t.same(await answers(), [], 'gone after its lapse, with no store event')
  t.comment(`gone ${Date.now() - lapse} ms after the lapse`)
  t.equal(status(await dig('lapsing.svc.plexus.internal')), 'NXDOMAIN', 'the service has no other source')
})

function udpSend(packets: Buffer[], port = PORT): Promise<number> {
  const s = createSocket('udp4')
  let replies = 0
  s.on('message', () => replies++)
  return new Promise((resolve) => {
    s.bind(0, '127.0.0.1', async () => {
      for (let i = 0; i < packets.length; i++) {
        s.send(packets[i]!, port, '127.0.0.1')
        // paced (about 10k packets/s) so the test measures answers, not socket-buffer overflow
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 2))
      }
      setTimeout(() => {
        s.close()
        resolve(replies)
      }, 300)
    })
  })
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  const b = Buffer.alloc(12)
  const fields = [id, flags, qd, an, ns, ar]
  for (let i = 0; i < fields.length; i++) b.writeUInt16BE(fields[i]!, i * 2)
  return b
}

t.test('hostile input never stops the server', async (t) => {
  const qname = Buffer.from('\x03web\x03svc\x06plexus\x08internal\x00', 'latin1')
  const typeClass = Buffer.from([0, 1, 0, 1])
  const bad = [
    Buffer.from([1, 2, 3, 4, 5]), // truncated header
    header(1, 0x0100, 1, 0, 0, 0), // claims a question, has none
    Buffer.concat([header(2, 0x0100, 1, 0, 0, 5), qname, typeClass]), // wrong additional count
    Buffer.concat([header(3, 0x0100, 1, 0, 0, 0), Buffer.from([0xc0, 12]), typeClass]), // pointer loop in the question
    Buffer.concat([
      header(4, 0x0100, 1, 0, 0, 0),
      Buffer.from(`${'\x3f'}${'a'.repeat(63)}`.repeat(5), 'latin1'),
      Buffer.from([0]),
      typeClass,
    ]), // > 255
    Buffer.concat([
      header(5, 0x0100, 1, 0, 0, 0),
      Buffer.from([70]),
      Buffer.alloc(70, 97),
      Buffer.from([0]),
      typeClass,
    ]), // label > 63
    Buffer.concat([header(6, 0x8100, 1, 0, 0, 0), qname, typeClass]), // a response: must not be answered
    Buffer.concat([header(7, 0x0100, 1, 0, 0, 1), qname, typeClass, Buffer.from([0xc0, 0x0c, 0xc0, 0x0c])]), // looping additional
    Buffer.concat([header(8, 0x0100, 2, 0, 0, 0), qname, typeClass, qname, typeClass]), // two questions
    Buffer.concat([header(9, 0x2900, 1, 0, 0, 0), qname, typeClass]), // opcode UPDATE
  ]
  const before = dns.status().stats.malformed
  const replies = await udpSend(bad)
  t.equal(replies, 8, 'FORMERR/NOTIMP where an id is readable, silence for runts and responses')
  t.ok(dns.status().stats.malformed - before >= 9)

  // garbage on TCP: the connection is closed, the server lives on
  const closed = await new Promise<boolean>((resolve) => {
    const s = connect(PORT, '127.0.0.1', () => s.write(Buffer.from([0, 3, 1, 2, 3, 0xff, 0xff, 0xff])))
    s.on('close', () => resolve(true))
    s.on('error', () => {})
    setTimeout(() => resolve(false), 2000)
  })
  t.ok(closed, 'garbage TCP connection closed')
  // a TCP client that sends half a frame and stalls does not block others
  const stall = connect(PORT, '127.0.0.1', () => stall.write(Buffer.from([0, 200, 1])))
  stall.on('error', () => {})
  t.teardown(() => stall.destroy())
  t.same(await short('+tcp', 'web1.ctr.plexus.internal'), ['10.244.1.2'])
  t.same(await short('web1.ctr.plexus.internal'), ['10.244.1.2'])
})

t.test('TCP: pipelined queries in one write, and a frame split into single bytes', async (t) => {
  const frame = (id: number, name: string) => {
    const q = Buffer.concat([
      header(id, 0x0100, 1, 0, 0, 0),
      Buffer.from(
        `${name
          .split('.')
          .map((l) => String.fromCharCode(l.length) + l)
          .join('')}\0`,
        'latin1',
      ),
      Buffer.from([0, 1, 0, 1]),
    ])
    return Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q])
  }
  const exchange = (chunks: Buffer[], want: number) =>
    new Promise<number[]>((resolve, reject) => {
      const ids: number[] = []
      let buf = Buffer.alloc(0)
      const s = connect(PORT, '127.0.0.1', async () => {
        for (const c of chunks) {
          s.write(c)
          await new Promise((r) => setTimeout(r, 1))
        }
      })
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
          ids.push(buf.readUInt16BE(2))
          buf = buf.subarray(buf.readUInt16BE(0) + 2)
        }
        if (ids.length === want) {
          s.destroy()
          resolve(ids.sort((a, b) => a - b))
        }
      })
      s.on('error', reject)
      setTimeout(() => reject(new Error(`only ${ids.length} answers`)), 3000)
    })
  const three = Buffer.concat([
    frame(1, 'web.svc.plexus.internal'),
    frame(2, 'example.test'),
    frame(3, 'web1.ctr.plexus.internal'),
  ])
  t.same(await exchange([three], 3), [1, 2, 3], 'all three answered (forwarded one may come out of order)')
  const one = frame(9, 'web.svc.plexus.internal')
  t.same(
    await exchange(
      [...one].map((b) => Buffer.from([b])),
      1,
    ),
    [9],
    'reassembled from single bytes',
  )
})

t.test('fuzz: thousands of mutated packets, then the server still answers', async (t) => {
  let seed = 12345
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const seeds = [
    'web.svc.plexus.internal',
    '_http._tcp.web.svc.plexus.internal',
    'example.test',
    '2.1.244.10.in-addr.arpa',
  ].map((name, i) =>
    Buffer.concat([
      header(i, 0x0100, 1, 0, 0, 1),
      Buffer.from(
        name
          .split('.')
          .map((l) => String.fromCharCode(l.length) + l)
          .join('') + '\0',
        'latin1',
      ),
      Buffer.from([0, 1, 0, 1]),
      Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]),
    ]),
  )
  const packets: Buffer[] = []
  for (let i = 0; i < 5000; i++) {
    const p = Buffer.from(seeds[rand(seeds.length)]!)
    const flips = 1 + rand(6)
    for (let f = 0; f < flips; f++) p[rand(p.length)] = rand(256)
    packets.push(
      rand(4) === 0
        ? p.subarray(0, rand(p.length))
        : rand(8) === 0
          ? Buffer.concat([p, Buffer.alloc(rand(64), rand(256))])
          : p,
    )
  }
  await udpSend(packets)
  t.same(await short('web.svc.plexus.internal'), ['10.244.1.2', '10.244.1.3'])
  t.same(await short('+tcp', 'web.svc.plexus.internal'), ['10.244.1.2', '10.244.1.3'])
})

t.test(
  'UDP: a burst comes back complete; a datagram bigger than a slot is malformed, not fatal',
  async (t) => {
    const q = Buffer.concat([
      header(77, 0x0100, 1, 0, 0, 0),
      Buffer.from('\x03web\x03svc\x06plexus\x08internal\x00', 'latin1'),
      Buffer.from([0, 1, 0, 1]),
    ])
    t.equal(await udpSend(Array.from({ length: 2000 }, () => q)), 2000)
    const before = dns.status().stats.malformed
    // a valid query followed by padding: only its first SLOT_SIZE bytes would be read
    t.equal(await udpSend([Buffer.concat([q, Buffer.alloc(udpAddon().SLOT_SIZE)])]), 0, 'not answered')
    t.equal(dns.status().stats.malformed - before, 1, 'counted malformed')
    t.same(
      await short('web.svc.plexus.internal'),
      ['10.244.1.2', '10.244.1.3'],
      'and the server answers after',
    )
  },
)
