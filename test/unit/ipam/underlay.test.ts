import type { NetworkInterfaceInfo } from 'node:os'
import t from 'tap'
import { formatSubnetEnv, subnetFromEnv } from '../../../src/ipam/subnet-env.js'
import { defaultRouteInterface, pickUnderlay } from '../../../src/ipam/underlay.js'

const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0102000A\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`

const addr = (address: string, internal = false) =>
  ({
    address,
    family: 'IPv4',
    internal,
    netmask: '255.255.255.0',
    mac: '',
    cidr: null,
  }) as unknown as NetworkInterfaceInfo
const IFACES = { lo: [addr('127.0.0.1', true)], eth0: [addr('192.0.2.11')], eth1: [addr('10.0.2.15')] }

t.test('default route interface: the lowest metric wins', async (t) => {
  t.equal(defaultRouteInterface(ROUTES), 'eth0')
  t.equal(defaultRouteInterface('Iface\tDestination\n'), undefined)
})

t.test('underlay choice', async (t) => {
  t.same(pickUnderlay(IFACES, {}, 'eth0'), { address: '192.0.2.11', ifname: 'eth0' })
  t.same(pickUnderlay(IFACES, { address: '10.0.2.15' }, 'eth0'), { address: '10.0.2.15', ifname: 'eth1' })
  t.same(pickUnderlay(IFACES, { ifname: 'eth1' }, 'eth0'), { address: '10.0.2.15', ifname: 'eth1' })
  t.throws(() => pickUnderlay(IFACES, { address: '198.51.100.1' }, 'eth0'), { code: 'PLX_IPAM_UNDERLAY' })
  t.throws(() => pickUnderlay(IFACES, {}, undefined), {
    code: 'PLX_IPAM_UNDERLAY',
    message: /no default route/,
  })
  t.throws(() => pickUnderlay(IFACES, { ifname: 'lo' }, undefined), {
    code: 'PLX_IPAM_UNDERLAY',
    message: /no IPv4/,
  })
})

t.test("subnet.env in flannel's format, read back in either form", async (t) => {
  const text = formatSubnetEnv({
    network: '10.244.0.0/16',
    subnet: { base: 0x0af40300, prefix: 24 },
    mtu: 1450,
    ipMasq: true,
  })
  t.equal(
    text,
    'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  )
  t.same(subnetFromEnv(text), { base: 0x0af40300, prefix: 24 })
  t.same(subnetFromEnv('FLANNEL_SUBNET=10.244.3.0/24'), { base: 0x0af40300, prefix: 24 })
  t.equal(subnetFromEnv('FLANNEL_SUBNET=bogus'), undefined)
  t.equal(subnetFromEnv(''), undefined)
})
