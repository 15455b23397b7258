import t from 'tap'
import { backendFor } from '../../../src/datapath/backend/index.js'
import { vtepMac } from '../../../src/datapath/backend/vxlan/mac.js'
import { type DesiredInput, desiredState } from '../../../src/datapath/desired.js'
import { bridgeMac } from '../../../src/datapath/mac.js'
import { datapathOrigins } from '../../../src/datapath/origins.js'
import { type NetworkConfigInput, parseNetworkConfig } from '../../../src/ipam/config.js'
import { validLeases } from '../../../src/ipam/leases.js'
import { explainSubject } from '../../../src/lib/explain.js'
import type { LeaseValue } from '../../../src/store/records.js'
import type { JsonValue, StoreRecord } from '../../../src/store/types.js'
import { H1_UNDERLAY } from '../../helpers/records.js'

const now = 1_800_000_000_000

function rec(
  peerId: string,
  v: Partial<LeaseValue> & { subnet: string; publicIp: string },
  network: ReturnType<typeof parseNetworkConfig>,
): StoreRecord {
  const value: LeaseValue = {
    hostname: peerId.replace('peer', 'h'),
    backend: backendFor(network.Backend.Type).leaseData(network, peerId),
    claimedAt: now - 1000,
    ...v,
  }
  return {
    key: `leases/${peerId}`,
    value: value as unknown as JsonValue,
    owner: peerId,
    version: { wall: now, logical: 0 },
    ttlMs: 60_000,
    tombstone: false,
    sig: '',
  }
}

function input(net: NetworkConfigInput, extra: StoreRecord[] = []): DesiredInput {
  const network = parseNetworkConfig(net)
  const records = [
    rec('peer1', { subnet: '10.244.1.0/24', publicIp: '192.0.2.11' }, network),
    rec('peer2', { subnet: '10.244.2.0/24', publicIp: '192.0.2.12' }, network),
    rec('peer3', { subnet: '10.244.3.0/24', publicIp: '198.51.100.13' }, network),
    ...extra,
  ]
  const leases = validLeases(records, network, now)
  const self = leases.valid.find((l) => l.peerId === 'peer1')
  if (!self) throw new Error('no self lease')
  return {
    network,
    peerId: 'peer1',
    self,
    leases,
    underlay: H1_UNDERLAY,
  }
}

t.test('vxlan: bridge, VTEP, and neighbour + FDB + onlink route per remote', async (t) => {
  const d = desiredState(input({}))
  t.same(d.links[0], {
    name: 'plexus0',
    kind: 'bridge',
    mtu: 1450,
    mac: bridgeMac('peer1'),
    addresses: ['10.244.1.1/24'],
  })
  t.same(d.links[1], {
    name: 'plexus.1',
    kind: 'vxlan',
    mtu: 1450,
    mac: vtepMac('peer1', 1),
    vxlan: { vni: 1, port: 8472, local: '192.0.2.11', dev: 'eth0', learning: false },
    addresses: ['10.244.1.0/32'],
  })
  t.same(d.routes, [
    { dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'plexus.1', onlink: true },
    { dst: '10.244.3.0/24', gateway: '10.244.3.0', dev: 'plexus.1', onlink: true },
  ])
  t.same(d.neighbours, [
    { dev: 'plexus.1', ip: '10.244.2.0', mac: vtepMac('peer2', 1) },
    { dev: 'plexus.1', ip: '10.244.3.0', mac: vtepMac('peer3', 1) },
  ])
  t.same(d.fdb, [
    { dev: 'plexus.1', mac: vtepMac('peer2', 1), dst: '192.0.2.12' },
    { dev: 'plexus.1', mac: vtepMac('peer3', 1), dst: '198.51.100.13' },
  ])
  t.same(
    d.remotes.map((r) => [r.host, r.mode]),
    [
      ['h2', 'vxlan'],
      ['h3', 'vxlan'],
    ],
  )
  t.same(
    d.firewall.sections.map((s) => s.name),
    ['spoof', 'isolation', 'cluster'],
  )
  t.same(d.firewall.sections[0]?.rules, [], 'no endpoints, no anti-spoofing rules')
  const isolation = d.firewall.sections[1]
  t.same(
    isolation?.rules.filter((r) => r.action.type === 'return').map((r) => r.match.src),
    ['192.0.2.11', '192.0.2.12', '198.51.100.13'],
    'the VXLAN port takes packets from every host with a valid lease, this one included',
  )
  t.ok(
    isolation?.rules.some((r) => r.hook === 'forward' && r.match.notSrc === '10.244.1.0/24'),
    'a container packet from outside this host’s subnet is not forwarded',
  )
})

t.test('endpoints: each veth gets its anti-spoofing block in the bridge hook', async (t) => {
  const endpoints = [{ hostVeth: 'plxaaaaaaaaaaaa', mac: '02:00:00:00:00:05', ipv4: '10.244.1.5' }]
  const d = desiredState({ ...input({}), endpoints })
  const spoof = d.firewall.sections.find((s) => s.name === 'spoof')
  t.ok(spoof?.rules.length, 'rules for the endpoint')
  t.ok(spoof?.rules.every((r) => r.hook === 'bridge' && r.match.iif === 'plxaaaaaaaaaaaa'))
})

t.test('vxlan DirectRouting: direct route on the same segment, VXLAN beyond it', async (t) => {
  const d = desiredState(input({ Backend: { DirectRouting: true } }))
  t.same(d.routes, [
    { dst: '10.244.2.0/24', gateway: '192.0.2.12', dev: 'eth0', onlink: false },
    { dst: '10.244.3.0/24', gateway: '10.244.3.0', dev: 'plexus.1', onlink: true },
  ])
  t.same(
    d.remotes.map((r) => r.mode),
    ['direct', 'vxlan'],
  )
  t.equal(d.fdb.length, 1)
})

t.test('host-gw: direct routes; a remote off the segment is refused with a reason', async (t) => {
  const d = desiredState(input({ Backend: { Type: 'host-gw' } }))
  t.same(d.links, [
    { name: 'plexus0', kind: 'bridge', mtu: 1500, mac: bridgeMac('peer1'), addresses: ['10.244.1.1/24'] },
  ])
  t.same(d.routes, [{ dst: '10.244.2.0/24', gateway: '192.0.2.12', dev: 'eth0', onlink: false }])
  const far = d.remotes.find((r) => r.host === 'h3')
  t.equal(far?.mode, 'refused')
  t.match(far?.reason, /198\.51\.100\.13.*not on this host's L2 segment \(eth0: 192\.0\.2\.0\/24\)/)
})

t.test('hostile or odd leases are never programmed', async (t) => {
  const network = parseNetworkConfig({})
  const evil = [
    rec('peer4', { subnet: '10.99.0.0/24', publicIp: '192.0.2.14' }, network),
    rec('peer5', { subnet: '10.244.2.0/24', publicIp: '192.0.2.15', claimedAt: now }, network),
    rec('peer6', { subnet: '10.244.6.0/24', publicIp: '10.244.9.9' }, network),
    rec('peer7', { subnet: '10.244.7.0/24', publicIp: '192.0.2.11' }, network),
    rec('peer8', { subnet: '10.244.8.0/24', publicIp: '192.0.2.18', backend: { type: 'host-gw' } }, network),
  ]
  const d = desiredState(input({}, evil))
  const dsts = d.routes.map((r) => r.dst)
  t.notOk(dsts.includes('10.99.0.0/24'), 'outside the network')
  t.notOk(dsts.includes('10.244.6.0/24'), 'underlay address inside the cluster network')
  t.same(
    d.routes.filter((r) => r.dst === '10.244.2.0/24').map((r) => r.gateway),
    ['10.244.2.0'],
    'the older claim keeps a contested subnet',
  )
  const byHost = Object.fromEntries(d.remotes.map((r) => [r.host, r]))
  t.match(byHost.h7?.reason, /own underlay address/)
  t.match(byHost.h8?.reason, /publishes no VTEP MAC/)
  t.notOk(dsts.includes('10.244.7.0/24'))
  t.notOk(dsts.includes('10.244.8.0/24'))
})

t.test('VTEP MAC: stable, per peer and VNI, locally administered unicast', async (t) => {
  t.equal(vtepMac('peerA', 1), vtepMac('peerA', 1))
  t.not(vtepMac('peerA', 1), vtepMac('peerB', 1))
  t.not(vtepMac('peerA', 1), vtepMac('peerA', 2))
  const first = Number.parseInt(vtepMac('peerA', 1).slice(0, 2), 16)
  t.equal(first & 0b11, 0b10)
  t.match(vtepMac('x', 7), /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
})

t.test('unknown backend type is refused by the registry', async (t) => {
  t.throws(() => backendFor('udp'), { code: 'PLX_DATAPATH_UNKNOWN_BACKEND' })
})

t.test('origins: each kernel object names the records it came from', async (t) => {
  const i = {
    ...input({ Backend: { Type: 'vxlan' } }),
    endpoints: [{ hostVeth: 'plx0123456789ab', mac: '02:00:00:00:00:aa', ipv4: '10.244.1.5' }],
  }
  const d = desiredState(i)
  const origins = datapathOrigins(i, d, {
    endpoints: [{ key: 'endpoints/peer1/c1/eth0', hostVeth: 'plx0123456789ab' }],
    provided: {},
  })
  const keysOf = (subject: string) =>
    explainSubject(origins, subject, () => 1).map((e) => [e.kind, e.records.map((r) => r.key)])
  t.same(keysOf('10.244.2.0/24'), [['route', ['config/network', 'leases/peer2']]])
  t.same(
    keysOf('plexus.1').filter(([k]) => k === 'link'),
    [['link', ['config/network', 'leases/peer1']]],
    "the VTEP from the config and this host's lease",
  )
  t.same(
    keysOf('plexus:spoof/plx0123456789ab-mac').map(([, keys]) => keys),
    [['endpoints/peer1/c1/eth0']],
    "a veth's anti-spoofing rule from its endpoint record",
  )
  t.same(keysOf('plx0123456789ab'), [['veth', ['endpoints/peer1/c1/eth0']]])
  const fdb = d.fdb.find((f) => f.dst === '192.0.2.12')
  t.ok(fdb)
  t.same(keysOf(fdb?.mac ?? ''), [
    ['neigh', ['config/network', 'leases/peer2']],
    ['fdb', ['config/network', 'leases/peer2']],
  ])
})

t.test(
  'a bridge network: its own bridge and VTEP plexus.<VNI>, entries per remote as the cluster’s',
  async (t) => {
    const cluster = input({})
    const network = parseNetworkConfig({ Network: '10.50.0.0/16', Backend: { VNI: 2 } })
    const netRec = (peer: string, subnet: string, publicIp: string) => ({
      ...rec(peer, { subnet, publicIp }, network),
      key: `netleases/${peer}/blue`,
    })
    const records = [
      netRec('peer1', '10.50.1.0/24', '192.0.2.11'),
      netRec('peer2', '10.50.2.0/24', '192.0.2.12'),
    ]
    const keys = {
      prefix: 'netleases/',
      key: (p: string) => `netleases/${p}/blue`,
      peerOf: (k: string) => k.split('/')[1],
      of: (k: string) => k.endsWith('/blue'),
      codec: (await import('../../../src/store/codecs.js')).netLeaseCodec,
    }
    const leases = validLeases(records, network, now, keys)
    const self = leases.valid.find((l) => l.peerId === 'peer1')
    const d = desiredState({
      ...cluster,
      bridgeNets: [{ name: 'blue', network, leases, ...(self ? { self } : {}) }],
    })
    const bridge = d.links.find((l) => l.name.startsWith('plxb-'))
    t.same(bridge?.addresses, ['10.50.1.1/24'])
    t.equal(bridge?.mtu, 1450)
    const vtep = d.links.find((l) => l.name === 'plexus.2')
    t.equal(vtep?.vxlan?.vni, 2)
    t.same(vtep?.addresses, ['10.50.1.0/32'])
    t.same(
      d.routes.find((r) => r.dst === '10.50.2.0/24'),
      { dst: '10.50.2.0/24', gateway: '10.50.2.0', dev: 'plexus.2', onlink: true },
    )
    t.same(
      d.fdb.find((f) => f.dev === 'plexus.2'),
      { dev: 'plexus.2', mac: vtepMac('peer2', 2), dst: '192.0.2.12' },
    )
    t.ok(
      d.links.find((l) => l.name === 'plexus0'),
      'the cluster bridge stays',
    )

    const noLease = desiredState({ ...cluster, bridgeNets: [{ name: 'blue', network, leases }] })
    const bare = noLease.links.find((l) => l.name.startsWith('plxb-'))
    t.same(bare?.addresses, [], 'without a lease here the bridge stays, without its address')
    t.notOk(noLease.links.some((l) => l.name === 'plexus.2'))
  },
)
