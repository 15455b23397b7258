// DNS scoping by the asker's networks (src/dns/scope.ts, issue 17 item 2): which
// networks an asker's address sees, a network's zone over its view of the
// store, and the zone stage over the tables of several networks.
import t from 'tap'
import { askerScopes, networkView } from '../../../src/dns/scope.js'
import { ZoneStage } from '../../../src/dns/zone/handler.js'
import { catalogInput } from '../../../src/services/catalog.js'
import type { StoreRecord } from '../../../src/store/types.js'
import { ask, data, endpoint, rec, sampleInput, table } from '../../helpers/dns-zone.js'

const NETWORKS = [
  { name: 'blue', cidr: '10.50.0.0/16', internal: false },
  { name: 'red', cidr: '10.60.0.0/16', internal: true },
]
const ip = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0)

t.test('an asker sees the networks of its container, the one it asks from first', async (t) => {
  const a = askerScopes({
    endpoints: [
      { containerId: 'c1', ifname: 'eth0', ipv4: '10.50.1.2', network: 'blue' },
      { containerId: 'c2', ifname: 'eth1', ipv4: '10.60.1.3', network: 'red' },
      { containerId: 'c2', ifname: 'eth0', ipv4: '10.50.1.3', network: 'blue' },
      { containerId: 'c3', ifname: 'eth0', ipv4: '10.244.1.4' },
      { containerId: 'c3', ifname: 'eth1', ipv4: '10.50.1.4', network: 'blue' },
      { containerId: 'c4', ifname: 'eth0', ipv4: '10.70.1.2', network: 'green' },
      { containerId: 'c5', ifname: 'eth0', ipv4: '10.60.1.5', network: 'red' },
    ],
    networks: NETWORKS,
  })
  const nets = (addr: string) => a.ofV4(ip(addr)).networks
  t.same(nets('10.50.1.2'), ['blue'])
  t.same(nets('10.50.1.3'), ['blue', 'red'], 'a container on two networks sees both')
  t.same(nets('10.60.1.3'), ['red', 'blue'], 'asking from red, red first')
  t.same(nets('10.244.1.4'), ['plexus', 'blue'], 'the cluster network is a network like the others')
  t.same(nets('10.70.1.2'), ['green'], 'a network known only from a local record (its config not here yet)')
  t.same(nets('10.50.9.9'), ['blue'], 'an unknown address in a network sees that network (another host)')
  t.same(nets('10.244.9.9'), ['plexus'], 'anything else the cluster network')
  t.same(nets('192.0.2.1'), ['plexus'])
  t.same(a.ofV4(0).networks, ['plexus'], 'an IPv6 sender on the UDP path: bridge networks are IPv4 only')
  t.same(a.of('10.50.1.3').networks, ['blue', 'red'], 'by text (TCP)')
  t.same(a.of('::ffff:10.60.1.3').networks, ['red', 'blue'], 'IPv4-mapped')
  t.same(a.of('fd00::1').networks, ['plexus'])
  t.same(a.of('garbage').networks, ['plexus'])
  t.same(a.networks, ['plexus', 'blue', 'red', 'green'], 'a zone for each network an asker may be on')

  t.equal(a.ofV4(ip('10.60.1.5')).forward, false, 'internal only: nothing is forwarded')
  t.equal(a.ofV4(ip('10.60.9.9')).forward, false)
  t.equal(a.ofV4(ip('10.60.1.3')).forward, true, 'internal and another: forwarded')
  t.equal(a.ofV4(ip('10.50.1.2')).forward, true)
  t.equal(a.ofV4(ip('10.50.1.2')), a.ofV4(ip('10.50.9.9')), 'one scope object per networks and forwarding')
  t.not(a.ofV4(ip('10.50.1.3')).key, a.ofV4(ip('10.60.1.3')).key, 'the order is part of the scope')
})

/** the sample's records plus a blue and a red container; web has a blue member, db a red one by registration */
function records(): StoreRecord[] {
  const input = sampleInput()
  input.endpoints.push(
    endpoint('peer1', 'b1', { ipv4: '10.50.1.2', network: 'blue', service: 'web' }),
    endpoint('peer2', 'b2', { ipv4: '10.50.2.2', network: 'blue' }),
    endpoint('peer2', 'r1', { ipv4: '10.60.2.2', network: 'red' }),
  )
  input.registrations.push(
    rec('registrations/peer2/r1/eth0/db', {
      service: 'db',
      endpointKey: 'endpoints/peer2/r1/eth0',
      tags: [],
      ports: [],
    }),
  )
  return Object.values(input).flat()
}

function store(rs: StoreRecord[]) {
  return {
    index: 1,
    get: (key: string) => rs.find((r) => r.key === key),
    list: (prefix: string) => rs.filter((r) => r.key.startsWith(prefix)),
  }
}

const zoneOf = (network: string) => table(catalogInput(networkView(store(records()), network)))

t.test("a network's zone holds its own endpoints, members and registrations only", async (t) => {
  const s = store(records())
  t.same(
    networkView(s, 'blue')
      .list('endpoints/')
      .map((r) => r.key),
    ['endpoints/peer1/b1/eth0', 'endpoints/peer2/b2/eth0'],
  )
  t.equal(networkView(s, 'plexus').get('endpoints/peer2/r1/eth0'), undefined, 'get hides them too')
  t.ok(networkView(s, 'plexus').get('endpoints/peer2/db1/eth0'))
  t.ok(networkView(s, 'red').get('nodes/peer1'), 'what is not an endpoint is every network’s')

  const blue = new ZoneStage(zoneOf('blue'))
  const red = new ZoneStage(zoneOf('red'))
  const cluster = new ZoneStage(zoneOf('plexus'))
  t.same(data(ask(blue, 'b2.ctr.plexus.internal', 'A')!.msg.answers), ['10.50.2.2'])
  t.same(data(ask(blue, 'web.svc.plexus.internal', 'A')!.msg.answers), ['10.50.1.2'], 'the blue member only')
  t.same(data(ask(cluster, 'web.svc.plexus.internal', 'A')!.msg.answers).sort(), ['10.244.1.2', '10.244.2.2'])
  t.same(
    data(ask(red, 'db.svc.plexus.internal', 'A')!.msg.answers),
    ['10.60.2.2'],
    'a registration follows its endpoint',
  )
  t.same(data(ask(blue, 'h1.node.plexus.internal', 'A')!.msg.answers), ['192.0.2.11'], 'hosts are everyone’s')
  for (const [stage, name] of [
    [blue, 'r1.ctr.plexus.internal'],
    [blue, 'web1.ctr.plexus.internal'],
    [blue, 'db.svc.plexus.internal'],
    [red, 'b1.ctr.plexus.internal'],
    [cluster, 'b1.ctr.plexus.internal'],
    [cluster, 'db.svc.plexus.internal'],
  ] as const) {
    const a = ask(stage, name, 'A')!
    t.equal(a.msg.rcode, 'NXDOMAIN', `${name}: NXDOMAIN, as a name that does not exist`)
    t.equal(a.msg.authorities?.[0]?.type, 'SOA')
  }
  t.equal(ask(blue, '2.2.60.10.in-addr.arpa', 'PTR'), undefined, "another network's PTR is not in the zone")
  t.same(data(ask(red, '2.2.60.10.in-addr.arpa', 'PTR')!.msg.answers), ['r1.ctr.plexus.internal'])
})

t.test('over several networks: the first that has the name answers', async (t) => {
  const both = new ZoneStage(zoneOf('blue'), zoneOf('red'))
  t.same(data(ask(both, 'b2.ctr.plexus.internal', 'A')!.msg.answers), ['10.50.2.2'])
  t.same(data(ask(both, 'r1.ctr.plexus.internal', 'A')!.msg.answers), ['10.60.2.2'])
  t.same(data(ask(both, 'db.svc.plexus.internal', 'A')!.msg.answers), ['10.60.2.2'])
  t.equal(
    ask(both, 'web1.ctr.plexus.internal', 'A')!.msg.rcode,
    'NXDOMAIN',
    'the cluster network is not one of them',
  )
  t.equal(ask(both, 'r1.ctr.plexus.internal', 'AAAA')!.msg.rcode, 'NOERROR', 'NODATA where one has the name')
  t.equal(ask(both, 'r1.ctr.plexus.internal', 'AAAA')!.msg.answers?.length ?? 0, 0)
  const withCluster = new ZoneStage(zoneOf('blue'), zoneOf('plexus'))
  t.same(
    data(ask(withCluster, 'web.svc.plexus.internal', 'A')!.msg.answers),
    ['10.50.1.2'],
    "a name in both: the first network's records (Docker's order)",
  )
  t.same(data(ask(withCluster, 'web1.ctr.plexus.internal', 'AAAA')!.msg.answers), ['fd00::1:2'])
})
