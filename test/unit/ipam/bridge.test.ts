import t from 'tap'
import {
  freeVni,
  leaseConfig,
  mergeLink,
  parseBridgeNetwork,
  parseNamedNetwork,
  subnetConfig,
} from '../../../src/ipam/bridge.js'
import { isPlexusError } from '../../../src/lib/errors.js'

const problems = (fn: () => unknown): string[] => {
  try {
    fn()
  } catch (err) {
    if (isPlexusError(err, 'PLX_IPAM_NETWORK_INVALID'))
      return (err.details as { problems: string[] }).problems
    throw err
  }
  return []
}

t.test('a bridge network is normalized: host subnet /24 by default, vxlan, not internal', async (t) => {
  t.same(parseBridgeNetwork({ name: 'blue', driver: 'bridge', cidr: '10.50.0.0/16', vni: 2 }), {
    name: 'blue',
    driver: 'bridge',
    cidr: '10.50.0.0/16',
    subnetLen: 24,
    backend: 'vxlan',
    vni: 2,
    internal: false,
  })
  t.equal(
    parseBridgeNetwork({ name: 'b', driver: 'bridge', cidr: '10.50.0.0/16', vni: 9, backend: 'wireguard' })
      .backend,
    'wireguard',
  )
  t.equal(parseBridgeNetwork({ name: 'b', driver: 'bridge', cidr: '10.50.0.0/24', vni: 9 }).subnetLen, 25)
  t.equal(
    parseBridgeNetwork({ name: 'b', driver: 'bridge', cidr: '10.50.0.0/16', vni: 9, internal: true })
      .internal,
    true,
  )
})

t.test('every problem of a bridge network is named at once', async (t) => {
  const p = problems(() =>
    parseBridgeNetwork({
      name: 'Bad_Name',
      driver: 'bridge',
      cidr: '10.50.0.0/33',
      subnetLen: 40,
      vni: 0,
      backend: 'ipsec',
      internal: 'yes',
      extra: 1,
    }),
  )
  t.equal(p.length, 7, p.join('; '))
  t.match(p.join('\n'), /backend "ipsec" is not one of vxlan, wireguard/)
  t.match(p.join('\n'), /extra is not a known field/)
  t.match(p.join('\n'), /DNS label/)
  t.match(p.join('\n'), /cidr/)
  t.match(p.join('\n'), /subnetLen must be an integer from 1 to 28/)
  t.match(p.join('\n'), /vni must be an integer/)
  t.match(p.join('\n'), /internal must be true or false/)
  t.match(
    problems(() =>
      parseBridgeNetwork({ name: 'b', driver: 'bridge', cidr: '10.50.0.0/24', subnetLen: 24, vni: 2 }),
    ),
    [/does not split cidr/],
  )
  t.match(
    problems(() => parseBridgeNetwork({ name: 'plexus', driver: 'bridge', cidr: '10.50.0.0/16', vni: 2 })),
    [/cluster network/],
  )
})

t.test('parseNamedNetwork dispatches on the driver', async (t) => {
  t.equal(parseNamedNetwork({ name: 'b', driver: 'bridge', cidr: '10.50.0.0/16', vni: 2 }).driver, 'bridge')
  t.match(
    problems(() => parseNamedNetwork({ name: 'b', driver: 'overlay' })),
    [/not supported/],
  )
  t.match(
    problems(() => parseNamedNetwork({ name: 'b', driver: 'macvlan' })),
    [/subnet/],
  )
})

t.test('the lease view of a bridge network: vxlan of its VNI, masquerade unless internal', async (t) => {
  const net = parseBridgeNetwork({
    name: 'blue',
    driver: 'bridge',
    cidr: '10.50.0.0/16',
    vni: 7,
    internal: true,
  })
  const cfg = subnetConfig(net)
  t.equal(cfg.Network, '10.50.0.0/16')
  t.equal(cfg.SubnetLen, 24)
  t.same([cfg.Backend.Type, cfg.Backend.VNI, cfg.IPMasq], ['vxlan', 7, false])
  t.same(leaseConfig(net), cfg)
  const wg = subnetConfig({ ...net, backend: 'wireguard', internal: false })
  t.same([wg.Backend.Type, wg.IPMasq], ['wireguard', true], 'a wireguard network leases as one')
})

t.test('freeVni: the lowest above the cluster VNI no network uses', async (t) => {
  t.equal(freeVni(1, []), 2)
  t.equal(freeVni(1, [2, 3, 5]), 4)
  t.equal(freeVni(10, [2, 11]), 12)
})

t.test('mergeLink: ports add up, no port opens every port, bad input named', async (t) => {
  const one = mergeLink('blue', { to: 'red', port: 8080 })
  t.same(one, { from: 'blue', to: 'red', ports: [{ port: 8080, protocol: 'tcp' }] })
  const two = mergeLink('blue', { to: 'red', port: 53, protocol: 'udp' }, one)
  t.same(two.ports, [
    { port: 53, protocol: 'udp' },
    { port: 8080, protocol: 'tcp' },
  ])
  t.same(
    mergeLink('blue', { to: 'red', port: 8080 }, two).ports,
    two.ports,
    'the same port again changes nothing',
  )
  t.same(mergeLink('blue', { to: 'red' }, two).ports, [], 'no port: every port')
  t.same(mergeLink('blue', { to: 'red', port: 1 }, { from: 'blue', to: 'red', ports: [] }).ports, [])
  const p = problems(() => mergeLink('blue', { to: 'blue', port: 0, protocol: 'icmp', x: 1 }))
  t.equal(p.length, 4, p.join('; '))
  t.match(
    problems(() => mergeLink('blue', { to: 'red', protocol: 'udp' })),
    [/without a port/],
  )
})
