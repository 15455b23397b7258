import t from 'tap'
import { type ActualState, changeTarget, desiredTargets, diffState } from '../../../src/datapath/diff.js'
import { clusterSection, expectedView } from '../../../src/datapath/firewall/model.js'
import type { DesiredState } from '../../../src/datapath/model.js'
import { parseNetworkConfig } from '../../../src/ipam/config.js'

const firewall = { sections: [clusterSection(parseNetworkConfig({}))] }
const vtep = {
  name: 'plexus.1',
  kind: 'vxlan' as const,
  mtu: 1450,
  mac: '02:00:00:00:00:01',
  vxlan: { vni: 1, port: 8472, local: '192.0.2.11', dev: 'eth0', learning: false as const },
  addresses: ['10.244.1.0/32'],
}
const desired: DesiredState = {
  links: [{ name: 'plexus0', kind: 'bridge', mtu: 1450, addresses: ['10.244.1.1/24'] }, vtep],
  routes: [{ dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'plexus.1', onlink: true }],
  neighbours: [{ dev: 'plexus.1', ip: '10.244.2.0', mac: '02:00:00:00:00:02' }],
  fdb: [{ dev: 'plexus.1', mac: '02:00:00:00:00:02', dst: '192.0.2.12' }],
  firewall,
  remotes: [],
}
/** the kernel exactly as desired */
function converged(): ActualState {
  return {
    links: [
      {
        name: 'plexus0',
        kind: 'bridge',
        mtu: 1450,
        up: true,
        mac: '02:aa:00:00:00:00',
        addresses: ['10.244.1.1/24'],
      },
      {
        name: 'plexus.1',
        kind: 'vxlan',
        mtu: 1450,
        up: true,
        mac: vtep.mac,
        vxlan: { vni: 1, port: 8472, local: '192.0.2.11', dev: 'eth0', learning: false },
        addresses: ['10.244.1.0/32'],
      },
    ],
    routes: [{ dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'plexus.1', onlink: true, ours: true }],
    neighbours: [{ dev: 'plexus.1', ip: '10.244.2.0', mac: '02:00:00:00:00:02' }],
    fdb: [{ dev: 'plexus.1', mac: '02:00:00:00:00:02', dst: '192.0.2.12' }],
    firewall: expectedView(firewall),
    forwarding: true,
  }
}
const kinds = (cs: { kind: string }[]) => cs.map((c) => c.kind)

t.test('converged: nothing to do', async (t) => {
  t.same(diffState(desired, converged()), [])
})

t.test('empty host: everything is created, in dependency order', async (t) => {
  const empty: ActualState = {
    links: [],
    routes: [],
    neighbours: [],
    fdb: [],
    firewall: {
      hooked: false,
      rules: { forward: [], input: [], prerouting: [], output: [], postrouting: [], bridge: [] },
    },
    forwarding: false,
  }
  t.same(kinds(diffState(desired, empty)), [
    'link-create',
    'addr-add',
    'link-create',
    'addr-add',
    'fdb-set',
    'neigh-set',
    'route-set',
    'forwarding-on',
    'firewall-apply',
  ])
})

t.test('drift: a missing route, FDB entry, neighbour or rule is re-added', async (t) => {
  const a = converged()
  a.routes = []
  a.fdb = []
  a.neighbours = []
  a.firewall = { ...a.firewall, rules: { ...a.firewall.rules, forward: a.firewall.rules.forward.slice(1) } }
  const cs = diffState(desired, a)
  t.same(kinds(cs), ['fdb-set', 'neigh-set', 'route-set', 'firewall-apply'])
  const targets = desiredTargets(desired)
  t.ok(
    cs.every((c) => c.kind === 'firewall-apply' || targets.has(changeTarget(c) as string)),
    'each re-add is a known target (counted as a repair)',
  )
})

t.test('changed entries are replaced; stale ones of ours removed; foreign routes kept', async (t) => {
  const a = converged()
  a.routes = [
    { dst: '10.244.2.0/24', gateway: '192.0.2.12', dev: 'eth0', onlink: false, ours: true },
    { dst: '10.244.9.0/24', gateway: '10.244.9.0', dev: 'plexus.1', onlink: true, ours: true },
    { dst: '172.16.0.0/12', gateway: '192.0.2.1', dev: 'eth0', onlink: false, ours: false },
  ]
  a.fdb.push({ dev: 'plexus.1', mac: '02:00:00:00:00:09', dst: '192.0.2.19' })
  a.neighbours = [{ dev: 'plexus.1', ip: '10.244.2.0', mac: '02:00:00:00:00:99' }]
  const cs = diffState(desired, a)
  t.same(cs, [
    { kind: 'route-del', route: a.routes[1] },
    { kind: 'fdb-del', fdb: { dev: 'plexus.1', mac: '02:00:00:00:00:09', dst: '192.0.2.19' } },
    { kind: 'neigh-set', neighbour: desired.neighbours[0] },
    { kind: 'route-set', route: desired.routes[0] },
  ])
})

t.test('a foreign route for a destination we want is taken over', async (t) => {
  const a = converged()
  a.routes = [{ ...(a.routes[0] as ActualState['routes'][0]), ours: false }]
  t.same(kinds(diffState(desired, a)), ['route-set'])
})

t.test('links: adjusted in place, or recreated when VXLAN parameters differ', async (t) => {
  const a = converged()
  const [br, vx] = a.links as [ActualState['links'][0], ActualState['links'][0]]
  br.mtu = 1500
  br.up = false
  br.addresses = ['10.244.7.1/24']
  vx.vxlan = { vni: 1, port: 4789, local: '192.0.2.11', dev: 'eth0', learning: false }
  const cs = diffState(desired, a)
  t.same(cs.slice(0, 6), [
    { kind: 'link-delete', name: 'plexus.1' },
    { kind: 'link-set', name: 'plexus0', mtu: 1450, up: true },
    { kind: 'addr-add', dev: 'plexus0', address: '10.244.1.1/24' },
    { kind: 'addr-del', dev: 'plexus0', address: '10.244.7.1/24' },
    { kind: 'link-create', link: vtep },
    { kind: 'addr-add', dev: 'plexus.1', address: '10.244.1.0/32' },
  ])
  t.same(
    kinds(cs.slice(6)),
    ['fdb-set', 'neigh-set', 'route-set'],
    'entries on the recreated VTEP are re-added',
  )
})

t.test('a VTEP of another VNI, or one host-gw does not want, is removed', async (t) => {
  const a = converged()
  a.links.push({ name: 'plexus.7', kind: 'vxlan', mtu: 1450, up: true, addresses: [] })
  t.same(diffState(desired, a), [{ kind: 'link-delete', name: 'plexus.7' }])
})

t.test(
  'switches: set where the kernel differs, on a link made in this batch, not on a missing interface',
  async (t) => {
    const withSwitches: DesiredState = {
      ...desired,
      switches: [
        { kind: 'route-localnet', dev: 'plexus0', on: true },
        { kind: 'hairpin', dev: 'plxaaaaaaaaaaaa', on: true },
        { kind: 'hairpin', dev: 'plxgone00000000', on: true },
      ],
    }
    const actual: ActualState = {
      ...converged(),
      switches: [
        { kind: 'route-localnet', dev: 'plexus0', on: false },
        { kind: 'hairpin', dev: 'plxaaaaaaaaaaaa', on: true },
      ],
    }
    const changes = diffState(withSwitches, actual)
    t.same(changes, [{ kind: 'switch-set', switch: { kind: 'route-localnet', dev: 'plexus0', on: true } }])
    t.ok(
      desiredTargets(withSwitches).has(changeTarget(changes[0] as never) as string),
      'a repair once confirmed',
    )
    const noBridge = { ...actual, links: actual.links.filter((l) => l.name !== 'plexus0'), switches: [] }
    t.same(
      diffState(withSwitches, noBridge)
        .filter((c) => c.kind === 'switch-set')
        .map((c) => (c.kind === 'switch-set' ? c.switch.dev : '')),
      ['plexus0'],
      'the bridge made in this batch gets its switch; a veth that is not there does not',
    )
  },
)
