// The networks' listing (`plexctl networks`) and `network rm`'s refusal, on one
// real store: members come from endpoint records (cluster and bridge
// networks) and macvlan member records, each host's subnet from its lease,
// and a network with members is removed only with force.
import { generateKeyPair } from '@libp2p/crypto/keys'
import t from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { netMemberKey, networkKey } from '../../../src/ipam/macvlan.js'
import {
  createNamedNetwork,
  initNetwork,
  networksOverview,
  removeNamedNetwork,
} from '../../../src/ipam/network.js'
import { isPlexusError } from '../../../src/lib/errors.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { endpointCodec, leaseCodec, netMemberCodec } from '../../../src/store/codecs.js'
import type { NetMemberValue } from '../../../src/store/records.js'
import { LocalStore } from '../../../src/store/store.js'
import type { JsonValue } from '../../../src/store/types.js'
import { endpointValue } from '../../helpers/records.js'

const LAN = { name: 'lan', driver: 'macvlan', subnet: '192.168.50.0/24', range: '192.168.50.128/25' }
const BLUE = { name: 'blue', driver: 'bridge', cidr: '10.50.0.0/16' }

async function newStore(): Promise<LocalStore> {
  return new LocalStore({
    signer: createSigner(await generateKeyPair('Ed25519')),
    verify: verifyRecordSignature,
    metrics: new Metrics(),
  })
}

const member = (extra: Partial<NetMemberValue> = {}): NetMemberValue => ({
  network: 'lan',
  containerId: 'mv-0123456789abcdef',
  ifname: 'eth2',
  host: 'h1',
  address: '192.168.50.130',
  prefixLength: 24,
  mac: '02:00:00:00:00:09',
  mtu: 1500,
  gateway: '192.168.50.1',
  netns: '/run/netns/mv',
  createdAt: '2026-01-01T00:00:00Z',
  ...extra,
})

/** a host's live lease (key leases/<self> or netleases/<self>/<network>) */
async function lease(store: LocalStore, key: string, subnet: string) {
  const value = {
    subnet,
    publicIp: '192.168.50.11',
    hostname: 'h1',
    backend: { type: 'vxlan' },
    claimedAt: Date.now() - 1000,
  }
  await store.put(key, leaseCodec.encode(value as never), { ttlMs: 60_000 })
}

async function populated(): Promise<LocalStore> {
  const store = await newStore()
  const self = store.self
  await initNetwork(store, { Network: '10.244.0.0/16' }, false)
  await createNamedNetwork(store, LAN)
  await createNamedNetwork(store, BLUE)
  await lease(store, `leases/${self}`, '10.244.3.0/24')
  await lease(store, `netleases/${self}/blue`, '10.50.7.0/24')
  const web = endpointValue('web', '10.244.3.5', { containerId: 'web-0123456789ab' })
  await store.put(`endpoints/${self}/${web.containerId}/eth0`, endpointCodec.encode(web))
  const onBlue = endpointValue('web', '10.50.7.9', {
    containerId: 'web-0123456789ab',
    ifname: 'eth1',
    network: 'blue',
    gateway: '10.50.7.100',
  })
  await store.put(`endpoints/${self}/${onBlue.containerId}/eth1`, endpointCodec.encode(onBlue))
  const m = member()
  await store.put(netMemberKey(self, m), netMemberCodec.encode(m))
  return store
}

t.test('every network with its hosts, backend and members', async (t) => {
  const store = await populated()
  const list = networksOverview(store)
  t.same(
    list.map((n) => [n.name, n.driver, n.backend, n.cidr]),
    [
      ['plexus', 'cluster', 'vxlan vni 1', '10.244.0.0/16'],
      ['blue', 'bridge', 'vxlan vni 2', '10.50.0.0/16'],
      ['lan', 'macvlan', 'macvlan parent (underlay)', '192.168.50.128/25'],
    ],
    'the cluster network first, then the named ones by name',
  )
  const [cluster, blue, lan] = list
  t.same(cluster?.hosts, [{ host: 'h1', peerId: store.self, subnet: '10.244.3.0/24' }])
  t.match(cluster?.members, [
    {
      network: 'plexus',
      containerId: 'web-0123456789ab',
      ifname: 'eth0',
      address: '10.244.3.5',
      gateway: '10.244.3.1',
    },
  ])
  t.equal(cluster?.members.length, 1, 'the bridge network interface is not on the cluster network')
  t.match(
    blue?.members,
    [{ ifname: 'eth1', address: '10.50.7.9', gateway: '10.50.7.100' }],
    'asked-for gateway kept',
  )
  t.same(
    blue?.hosts.map((h) => h.subnet),
    ['10.50.7.0/24'],
  )
  t.match(lan, { subnet: '192.168.50.0/24', gateway: '192.168.50.1', hosts: [] })
  t.match(lan?.members, [
    { containerId: 'mv-0123456789abcdef', ifname: 'eth2', address: '192.168.50.130', host: 'h1' },
  ])
})

t.test('a member record that disagrees with its key is left out', async (t) => {
  const store = await populated()
  const bad = member({ ifname: 'eth3' })
  await store.put(netMemberKey(store.self, { ...bad, ifname: 'eth4' }), bad as unknown as JsonValue)
  t.equal(networksOverview(store).find((n) => n.name === 'lan')?.members.length, 1)
})

t.test('network rm is refused while containers are attached, unless forced', async (t) => {
  const store = await populated()
  const err = await removeNamedNetwork(store, 'lan').catch((e: unknown) => e)
  t.ok(isPlexusError(err, 'PLX_IPAM_NETWORK_IN_USE'), 'refused')
  if (isPlexusError(err)) {
    t.match(err.details, { status: 409, members: ['mv-012345678/eth2 on h1 (192.168.50.130)'] })
    t.match(err.message, /DEL them first, or use --force/)
  }
  t.ok(store.get(networkKey('lan')), 'still there')
  await t.rejects(
    removeNamedNetwork(store, 'blue'),
    { code: 'PLX_IPAM_NETWORK_IN_USE' },
    'bridge members count',
  )

  // once its last member is gone it goes without force
  await store.delete(netMemberKey(store.self, member()))
  await removeNamedNetwork(store, 'lan')
  t.equal(store.get(networkKey('lan')), undefined)
  await removeNamedNetwork(store, 'blue', true)
  t.equal(store.get(networkKey('blue')), undefined, 'force removes one with members')
})
