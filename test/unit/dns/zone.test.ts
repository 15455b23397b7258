import dnsPacket from 'dns-packet'
import t from 'tap'
import { compileZone, MAX_ANSWER_BYTES, rotationStarts, shuffle } from '../../../src/dns/zone/compile.js'
import { ZoneStage } from '../../../src/dns/zone/handler.js'
import { zoneOrigins } from '../../../src/dns/zone/origins.js'
import { buildZone } from '../../../src/dns/zone/records.js'
import { explainSubject } from '../../../src/lib/explain.js'
import { buildCatalog } from '../../../src/services/catalog.js'
import { ask, data, endpoint, query, rec, sampleInput, table } from '../../helpers/dns-zone.js'

t.test('service A/AAAA lists healthy endpoints, authoritative, question echoed as asked', async (t) => {
  const z = new ZoneStage(table())
  const r = ask(z, 'WeB.Svc.Plexus.Internal', 'A')!
  t.equal(r.msg.rcode, 'NOERROR')
  t.ok(r.msg.flags! & dnsPacket.AUTHORITATIVE_ANSWER)
  t.equal(r.msg.id, 4242)
  t.equal(r.msg.questions![0]!.name, 'WeB.Svc.Plexus.Internal')
  t.same(data(r.msg.answers).sort(), ['10.244.1.2', '10.244.2.2'])
  t.ok(r.msg.answers!.every((a) => (a as { ttl?: number }).ttl === 5))
  t.same(data(ask(z, 'web.svc.plexus.internal.', 'AAAA')!.msg.answers), ['fd00::1:2'])
})

t.test("a record at the asked name points to the question's name; other names are written out", async (t) => {
  const z = new ZoneStage(table())
  const asked = 'WeB.Svc.Plexus.Internal'
  const r = ask(z, asked, 'A')!
  t.same(
    r.msg.answers!.map((a) => a.name),
    [asked, asked],
    'the answers carry the name as asked: a pointer to it',
  )
  const questionEnd = 12 + asked.length + 2 + 4
  t.same(
    [...r.raw.subarray(questionEnd, questionEnd + 2)],
    [0xc0, 0x0c],
    'the first answer starts with the pointer',
  )
  const whole = dnsPacket.encode({ ...r.msg, type: 'response' }).length
  t.ok(r.raw.length < whole, `${r.raw.length} bytes, ${whole} with every name written out`)

  const srv = ask(z, '_HTTP._tcp.web.svc.plexus.internal', 'SRV')!
  t.ok(srv.msg.answers!.every((a) => a.name === '_HTTP._tcp.web.svc.plexus.internal'))
  t.same(
    [...new Set(srv.msg.additionals!.map((a) => a.name))].sort(),
    ['web1.ctr.plexus.internal', 'web2.ctr.plexus.internal'],
    "the targets' addresses keep their own names",
  )
  const any = ask(z, '_http._tcp.web.svc.plexus.internal', 'ANY')!
  t.same(
    any.msg.answers!.map((a) => a.type),
    ['SRV', 'SRV'],
    "ANY at a name of one set answers that set (the SRV answer's additional addresses too)",
  )
  t.equal(any.msg.additionals!.length, 3)
})

t.test("agent.plexus.internal is the answering host's gateway, and absent without one", async (t) => {
  const zone = (agentAddress?: string) =>
    new ZoneStage(
      compileZone(
        buildZone(buildCatalog(sampleInput()), {
          origin: 'plexus.internal',
          ttl: 5,
          serial: 7,
          nsAddresses: [],
          ...(agentAddress ? { agentAddress } : {}),
        }),
      ),
    )
  t.same(data(ask(zone('10.244.3.1'), 'agent.plexus.internal', 'A')?.msg.answers), ['10.244.3.1'])
  t.equal(ask(zone(), 'agent.plexus.internal', 'A')?.msg.rcode, 'NXDOMAIN', 'no lease yet: no such name')
})

t.test('answers are shuffled: every endpoint leads sometimes', async (t) => {
  const z = new ZoneStage(table())
  const firsts = new Set<unknown>()
  const sets = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const answers = data(ask(z, 'web.svc.plexus.internal', 'A')!.msg.answers)
    firsts.add(answers[0])
    sets.add(JSON.stringify([...answers].sort()))
  }
  t.same([...firsts].sort(), ['10.244.1.2', '10.244.2.2'])
  t.same([...sets], ['["10.244.1.2","10.244.2.2"]'], 'every rotation answers the whole set')
  const base = shuffle([1, 2, 3, 4, 5])
  t.same([...base].sort(), [1, 2, 3, 4, 5], 'a permutation')
  t.same(rotationStarts(5), [0, 1, 2, 3, 4], 'each of five leads in one order')
  t.same(rotationStarts(80), [0, 10, 20, 30, 40, 50, 60, 70], 'eight orders, evenly apart')
})

t.test('tag filter, SRV with additional addresses, by port name and number', async (t) => {
  const z = new ZoneStage(table())
  t.same(data(ask(z, 'v1.web.svc.plexus.internal', 'A')!.msg.answers), ['10.244.1.2'])
  for (const name of ['_http._tcp.web.svc.plexus.internal', '_80._tcp.web.svc.plexus.internal']) {
    const r = ask(z, name, 'SRV')!
    t.same((r.msg.answers as dnsPacket.SrvAnswer[]).map((a) => `${a.data.target}:${a.data.port}`).sort(), [
      'web1.ctr.plexus.internal:80',
      'web2.ctr.plexus.internal:80',
    ])
    const add = r.msg.additionals!.map((a) => `${a.name} ${a.type} ${'data' in a ? a.data : ''}`).sort()
    t.same(add, [
      'web1.ctr.plexus.internal A 10.244.1.2',
      'web1.ctr.plexus.internal AAAA fd00::1:2',
      'web2.ctr.plexus.internal A 10.244.2.2',
    ])
  }
})

t.test('container, node and reverse names', async (t) => {
  const z = new ZoneStage(table())
  t.same(data(ask(z, 'db_one.ctr.plexus.internal', 'A')!.msg.answers), ['10.244.2.3'])
  t.same(data(ask(z, 'h2.node.plexus.internal', 'A')!.msg.answers), ['192.0.2.12'])
  t.same(data(ask(z, '3.2.244.10.in-addr.arpa', 'PTR')!.msg.answers), ['db_one.ctr.plexus.internal'])
  const v6 = '2.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa'
  t.same(data(ask(z, v6, 'PTR')!.msg.answers), ['web1.ctr.plexus.internal'])
  t.equal(ask(z, '9.9.244.10.in-addr.arpa', 'PTR'), undefined, 'unknown reverse names go on to forwarding')
  t.equal(ask(z, 'example.com', 'A'), undefined, 'outside the zone goes on')
})

t.test('SOA and NS at the apex, NS with glue', async (t) => {
  const z = new ZoneStage(table())
  const soa = ask(z, 'plexus.internal', 'SOA')!.msg.answers![0] as dnsPacket.SoaAnswer
  t.equal(soa.data.mname, 'ns.plexus.internal')
  t.equal(soa.data.serial, 7)
  t.equal(soa.data.minimum, 5)
  const ns = ask(z, 'plexus.internal', 'NS')!.msg
  t.same(data(ns.answers), ['ns.plexus.internal'])
  t.same(data(ns.additionals), ['10.244.1.1'])
})

t.test('NXDOMAIN vs NODATA, both with SOA', async (t) => {
  const z = new ZoneStage(table())
  const nx = ask(z, 'nope.svc.plexus.internal', 'A')!.msg
  t.equal(nx.rcode, 'NXDOMAIN')
  t.same(nx.answers, [])
  t.equal(nx.authorities![0]!.type, 'SOA')
  for (const [name, type] of [
    ['web.svc.plexus.internal', 'MX'],
    ['empty.svc.plexus.internal', 'A'],
    ['svc.plexus.internal', 'A'],
    ['_tcp.web.svc.plexus.internal', 'SRV'],
    ['db_one.ctr.plexus.internal', 'AAAA'],
    ['web.svc.plexus.internal', 'TXT'],
  ]) {
    const m = ask(z, name!, type!)!.msg
    t.equal(m.rcode, 'NOERROR', `${name} ${type}`)
    t.same(m.answers, [], `${name} ${type}: no answers`)
    t.equal(m.authorities![0]?.type, 'SOA', `${name} ${type}: SOA`)
  }
  // an unknown type number
  const q = query('web.svc.plexus.internal', 'A')
  q.buf.writeUInt16BE(65000, q.nameEnd)
  q.qtype = 65000
  const r = dnsPacket.decode(z.handle(q, () => Buffer.alloc(0)) as Buffer) as unknown as dnsPacket.Packet & {
    rcode: string
  }
  t.equal(r.rcode, 'NOERROR')
  t.equal(r.authorities![0]?.type, 'SOA')
})

t.test('ANY returns every record set at the name', async (t) => {
  const z = new ZoneStage(table())
  const m = ask(z, 'web.svc.plexus.internal', 'ANY')!.msg
  t.same(m.answers!.map((a) => a.type).sort(), ['A', 'A', 'AAAA'])
})

t.test('unhealthy endpoints leave answers, then come back', async (t) => {
  const input = sampleInput()
  const critical = rec('health/peer1/web1:eth0:web:http', {
    endpointKey: 'endpoints/peer1/web1/eth0',
    service: 'web',
    check: 'http',
    status: 'critical',
    output: 'connection refused',
    checkedAt: new Date().toISOString(),
  })
  input.health.push(critical)
  const z = new ZoneStage(table(input))
  t.same(data(ask(z, 'web.svc.plexus.internal', 'A')!.msg.answers), ['10.244.2.2'])
  t.same(
    data(ask(z, 'web1.ctr.plexus.internal', 'A')!.msg.answers),
    ['10.244.1.2'],
    'the container name stays',
  )
  // a health record from another host than the endpoint's is ignored
  input.health[0] = { ...critical, key: 'health/peer2/x', owner: 'peer2' }
  t.equal(ask(new ZoneStage(table(input)), 'web.svc.plexus.internal', 'A')!.msg.answers!.length, 2)
})

/** db1 on peer2 joins service db through the API, tagged primary, with a named port */
const dbRegistration = () =>
  rec('registrations/peer2/db1/eth0/db', {
    service: 'db',
    endpointKey: 'endpoints/peer2/db1/eth0',
    tags: ['primary'],
    ports: [{ name: 'pg', port: 5432, protocol: 'tcp' }],
  })

t.test('API registrations join services; a wrong owner is ignored', async (t) => {
  const input = sampleInput()
  input.registrations.push(
    dbRegistration(),
    rec('registrations/peer1/db1/eth0/evil', {
      service: 'evil',
      endpointKey: 'endpoints/peer2/db1/eth0',
      tags: [],
      ports: [],
    }),
  )
  const z = new ZoneStage(table(input))
  t.same(data(ask(z, 'primary.db.svc.plexus.internal', 'A')!.msg.answers), ['10.244.2.3'])
  t.equal(
    (ask(z, '_pg._tcp.db.svc.plexus.internal', 'SRV')!.msg.answers![0] as dnsPacket.SrvAnswer).data.port,
    5432,
  )
  t.equal(ask(z, 'evil.svc.plexus.internal', 'A')!.msg.rcode, 'NXDOMAIN')
})

t.test('EDNS: OPT echoed; big answers truncate over UDP, fit over TCP', async (t) => {
  const input = sampleInput()
  for (let i = 0; i < 120; i++)
    input.endpoints.push(
      endpoint(`peer${i}`, `big${i}`, { ipv4: `10.244.9.${i}`, service: 'big', host: `h${i}` }),
    )
  input.nodes.push(
    ...Array.from({ length: 120 }, (_, i) => rec(`nodes/peer${i}`, { name: `h${i}`, address: '192.0.2.1' })),
  )
  const z = new ZoneStage(table(input))
  const e = ask(z, 'web.svc.plexus.internal', 'A', { edns: 4096 })!.msg
  t.equal(e.additionals!.filter((a) => a.type === 'OPT').length, 1)
  const noEdns = ask(z, 'web.svc.plexus.internal', 'A')!.msg
  t.equal(noEdns.additionals!.length, 0)
  const udp = ask(z, 'big.svc.plexus.internal', 'A')!.msg
  t.ok(udp.flags! & dnsPacket.TRUNCATED_RESPONSE)
  t.same(udp.answers, [])
  const udpEdns = ask(z, 'big.svc.plexus.internal', 'A', { edns: 4096 })!
  t.ok(udpEdns.raw.length <= 1232 && udpEdns.msg.flags! & dnsPacket.TRUNCATED_RESPONSE, 'EDNS capped at 1232')
  const tcp = ask(z, 'big.svc.plexus.internal', 'A', { tcp: true })!.msg
  t.notOk(tcp.flags! & dnsPacket.TRUNCATED_RESPONSE)
  t.equal(tcp.answers!.length, 120)
})

t.test('a set too big for one TCP message answers the part of each order that fits', async (t) => {
  const input = sampleInput()
  const members = 2500
  for (let i = 0; i < members; i++)
    input.endpoints.push(
      endpoint('peer1', `api${i}`, {
        ipv4: `10.245.${i >> 8}.${i & 255}`,
        service: 'api',
        ports: [{ port: 8080, protocol: 'tcp' }],
      }),
    )
  const z = new ZoneStage(table(input))
  const seen = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const r = ask(z, '_8080._tcp.api.svc.plexus.internal', 'SRV', { tcp: true })!
    t.notOk(r.msg.flags! & dnsPacket.TRUNCATED_RESPONSE)
    if (seen.size === 0) {
      t.ok(r.raw.length <= 65535, `${r.raw.length} bytes fit one TCP message`)
      t.ok(
        r.msg.answers!.length > 100 && r.msg.answers!.length < members,
        `${r.msg.answers!.length} of ${members}`,
      )
      const targets = r.msg.answers!.map((a) => (a as dnsPacket.SrvAnswer).data.target).sort()
      t.same(
        r.msg.additionals!.map((a) => a.name).sort(),
        targets,
        'the additionals are the targets of the answers',
      )
    }
    seen.add((r.msg.answers![0] as dnsPacket.SrvAnswer).data.target)
  }
  t.ok(seen.size > 1, `answers lead with ${seen.size} different members across orders`)
  // an A record at the name asked is 16 bytes (its name a pointer to the question): 2,500 are 40,000
  const a = ask(z, 'api.svc.plexus.internal', 'A', { tcp: true })!
  t.equal(a.msg.answers!.length, members, 'the A set fits whole')
  t.ok(40_000 <= MAX_ANSWER_BYTES)
  t.equal(
    ask(z, 'web.svc.plexus.internal', 'A', { tcp: true })!.msg.answers!.length,
    2,
    'a set that fits is whole',
  )
})

t.test('explain: zone entries name the records they come from', async (t) => {
  const input = sampleInput()
  input.registrations.push(dbRegistration())
  const origins = zoneOrigins(buildCatalog(input), 'plexus.internal')
  const explain = (s: string) =>
    explainSubject(origins, s, () => 3).map((e) => `${e.kind} ${e.records.map((r) => r.key).join(',')}`)
  t.same(explain('h2.node.plexus.internal'), ['A nodes/peer2'])
  t.same(
    explain('DB_One.ctr.plexus.internal.'),
    [
      'A endpoints/peer2/db1/eth0',
      'PTR endpoints/peer2/db1/eth0',
      'SRV endpoints/peer2/db1/eth0,registrations/peer2/db1/eth0/db',
      'SRV endpoints/peer2/db1/eth0,registrations/peer2/db1/eth0/db',
    ],
    'its address, and the entries that name it: its PTR, the SRV records (by port name and number) of its service',
  )
  t.same(explain('web.svc.plexus.internal'), [
    'A endpoints/peer1/web1/eth0,services/web',
    'AAAA endpoints/peer1/web1/eth0,services/web',
    'A endpoints/peer2/web2/eth0,services/web',
  ])
  t.same(explain('_pg._tcp.db.svc.plexus.internal'), [
    'SRV endpoints/peer2/db1/eth0,registrations/peer2/db1/eth0/db',
  ])
  t.same(explain('10.244.2.3'), [
    'A endpoints/peer2/db1/eth0',
    'A endpoints/peer2/db1/eth0,registrations/peer2/db1/eth0/db',
    'A endpoints/peer2/db1/eth0,registrations/peer2/db1/eth0/db',
  ])
  // every name the served zone holds records at is explained, and nothing else
  const zone = buildZone(buildCatalog(input), {
    origin: 'plexus.internal',
    ttl: 5,
    serial: 1,
    nsAddresses: [],
  })
  const withData = [...zone.names].filter(([n, z]) => z.sets.size && n !== 'plexus.internal').map(([n]) => n)
  t.same([...new Set(origins.map((o) => o.object.split(' ')[0]))].sort(), withData.sort())
})
