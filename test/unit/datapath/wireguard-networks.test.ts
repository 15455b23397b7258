// Bridge networks over WireGuard (issue 17 item 2), pure parts: every
// wireguard overlay shares the host's one device, a remote host is one peer
// whatever the overlays it serves, and the firewall keeps the networks apart.
import t from 'tap'
import { generateKeys } from '../../../src/datapath/backend/wireguard/keys.js'
import { type DesiredInput, desiredState } from '../../../src/datapath/desired.js'
import { networksSections } from '../../../src/datapath/firewall/networks.js'
import { networkBridgeName } from '../../../src/datapath/model.js'
import { parseNetworkConfig } from '../../../src/ipam/config.js'
import { validLeases } from '../../../src/ipam/leases.js'
import { netLeaseKeys } from '../../../src/ipam/macvlan.js'
import type { LeaseValue } from '../../../src/store/records.js'
import type { JsonValue, StoreRecord } from '../../../src/store/types.js'
import { H1_UNDERLAY, leaseRecord } from '../../helpers/records.js'

const NOW = 1_800_000_000_000
const KEYS = { p1: generateKeys(), p2: generateKeys(), p3: generateKeys() }
const GREEN = parseNetworkConfig({ Network: '10.90.0.0/16', Backend: { Type: 'wireguard', VNI: 5 } })

function record(key: string, peer: string, subnet: string, backend: Record<string, JsonValue>): StoreRecord {
  const n = Number(peer.slice(1))
  const value = { subnet, publicIp: `192.0.2.${10 + n}`, hostname: `h${n}`, backend }
  return leaseRecord(key, peer, value as LeaseValue, NOW)
}

const wgData = (peer: keyof typeof KEYS, n = Number(peer.slice(1))) => ({
  type: 'wireguard',
  publicKey: KEYS[peer].publicKey,
  endpoint: `192.0.2.${10 + n}:51820`,
})

/** green's leases: each host's 10.90.<n>.0/24, `key` naming whose key the lease publishes */
function greenLeases(keyOf: Record<string, keyof typeof KEYS> = {}) {
  return validLeases(
    (['p1', 'p2', 'p3'] as const).map((p) =>
      record(
        `netleases/${p}/green`,
        p,
        `10.90.${p.slice(1)}.0/24`,
        wgData(keyOf[p] ?? p, Number(p.slice(1))),
      ),
    ),
    GREEN,
    NOW,
    netLeaseKeys('green'),
  )
}

function input(cluster: 'vxlan' | 'wireguard', green = greenLeases()): DesiredInput {
  const network = parseNetworkConfig({ Backend: { Type: cluster } })
  const data = (p: keyof typeof KEYS) =>
    cluster === 'wireguard' ? wgData(p) : { type: 'vxlan', vni: 1, vtepMac: '02:00:00:00:00:0' + p.slice(1) }
  const leases = validLeases(
    (['p1', 'p2', 'p3'] as const).map((p) => record(`leases/${p}`, p, `10.244.${p.slice(1)}.0/24`, data(p))),
    network,
    NOW,
  )
  const self = leases.valid.find((l) => l.peerId === 'p1')
  const greenSelf = green.valid.find((l) => l.peerId === 'p1')
  if (!self || !greenSelf) throw new Error('no self lease')
  return {
    network,
    peerId: 'p1',
    self,
    leases,
    underlay: H1_UNDERLAY,
    wgPublicKey: KEYS.p1.publicKey,
    bridgeNets: [{ name: 'green', network: GREEN, self: greenSelf, leases: green }],
  }
}

t.test(
  'a wireguard network beside a vxlan cluster: its own bridge, peers on plexus-wg, no VTEP',
  async (t) => {
    const d = desiredState(input('vxlan'))
    t.same(
      d.links.map((l) => [l.name, l.kind, l.addresses]),
      [
        ['plexus0', 'bridge', ['10.244.1.1/24']],
        ['plexus.1', 'vxlan', ['10.244.1.0/32']],
        [networkBridgeName('green'), 'bridge', ['10.90.1.1/24']],
        ['plexus-wg', 'wireguard', ['10.90.1.0/32']],
      ],
    )
    t.equal(d.links.find((l) => l.name === 'plexus-wg')?.mtu, 1440, 'MTU = underlay - 60')
    t.same(d.wireguard, {
      ifname: 'plexus-wg',
      listenPort: 51820,
      peers: [
        { publicKey: KEYS.p2.publicKey, endpoint: '192.0.2.12:51820', allowedIps: ['10.90.2.0/24'] },
        { publicKey: KEYS.p3.publicKey, endpoint: '192.0.2.13:51820', allowedIps: ['10.90.3.0/24'] },
      ],
    })
    t.same(
      d.routes.filter((r) => r.dev === 'plexus-wg').map((r) => r.dst),
      ['10.90.2.0/24', '10.90.3.0/24'],
    )
  },
)

t.test('a wireguard network beside a wireguard cluster: one peer per host with both subnets', async (t) => {
  const d = desiredState(input('wireguard'))
  t.same(d.links.filter((l) => l.name === 'plexus-wg').length, 1, 'one device')
  t.same(d.links.find((l) => l.name === 'plexus-wg')?.addresses, ['10.244.1.0/32', '10.90.1.0/32'])
  t.same(
    d.wireguard?.peers.map((p) => [p.publicKey, p.allowedIps]),
    [
      [KEYS.p2.publicKey, ['10.244.2.0/24', '10.90.2.0/24']],
      [KEYS.p3.publicKey, ['10.244.3.0/24', '10.90.3.0/24']],
    ],
  )
  // green's packets arrive on plexus-wg with green sources: the cluster-only source rule would drop them
  const isolation = (x: DesiredInput) =>
    desiredState(x)
      .firewall.sections.find((s) => s.name === 'isolation')
      ?.rules.map((r) => r.id)
  t.notOk(
    isolation(input('wireguard'))?.includes('overlay-spoof'),
    'no cluster-only source rule on plexus-wg',
  )
  const alone = { ...input('wireguard'), bridgeNets: [] }
  t.ok(isolation(alone)?.includes('overlay-spoof'), 'which a wireguard cluster alone keeps')
})

t.test("a host's network lease naming another host's key is refused, not merged", async (t) => {
  const d = desiredState(input('wireguard', greenLeases({ p3: 'p2' })))
  t.same(
    d.remotes.filter((r) => r.mode === 'refused').map((r) => [r.subnet, r.reason]),
    [['10.90.3.0/24', 'h3 publishes the WireGuard key of h2']],
  )
  t.same(
    d.wireguard?.peers.map((p) => p.allowedIps),
    [['10.244.2.0/24', '10.90.2.0/24'], ['10.244.3.0/24']],
    "h2's peer does not take h3's green subnet",
  )
})

t.test('networks section: a wireguard network has no VTEP guard; the port opens once', async (t) => {
  const cluster = { name: 'plexus', cidr: '10.244.0.0/16', internal: false }
  const green = {
    name: 'green',
    cidr: '10.90.0.0/16',
    subnet: '10.90.1.0/24',
    vni: 5,
    backend: 'wireguard' as const,
    internal: false,
  }
  const [, section] = networksSections({
    cluster,
    bridges: [green],
    links: [],
    vxlanPort: 8472,
    wireguardPort: 51820,
  })
  t.notOk(
    section.rules.some((r) => r.id.startsWith('overlay-spoof-')),
    'no VTEP to guard',
  )
  t.ok(
    section.rules.some((r) => r.id.startsWith('spoof-fwd-')),
    "its bridge's containers still send only from its subnet",
  )
  t.same(
    section.rules.find((r) => r.id === 'wg-port'),
    {
      id: 'wg-port',
      hook: 'input',
      match: { proto: 'udp', dport: 51820 },
      action: { type: 'accept' },
    },
  )
  const [, vx] = networksSections({
    cluster,
    bridges: [{ ...green, backend: 'vxlan' }],
    links: [],
    vxlanPort: 8472,
  })
  t.ok(
    vx.rules.some((r) => r.id.startsWith('overlay-spoof-')),
    'a vxlan network guards its VTEP',
  )
  t.notOk(
    vx.rules.some((r) => r.id === 'wg-port'),
    'and opens no WireGuard port',
  )
})
