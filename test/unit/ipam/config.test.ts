import t from 'tap'
import {
  networkRanges,
  overlayMtu,
  parseNetworkConfig,
  sameNetworkConfig,
  subnetCount,
} from '../../../src/ipam/config.js'

t.test('defaults are flannel defaults', async (t) => {
  const c = parseNetworkConfig({})
  t.same(c, {
    Network: '10.244.0.0/16',
    SubnetLen: 24,
    SubnetMin: '10.244.1.0',
    SubnetMax: '10.244.255.0',
    Backend: { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: false },
    IPMasq: true,
  })
  t.equal(subnetCount(networkRanges(c)), 255)
  t.equal(overlayMtu(c, 1500), 1450, 'vxlan: underlay - 50')
  t.equal(overlayMtu(parseNetworkConfig({ Backend: { Type: 'host-gw' } }), 1500), 1500, 'host-gw: underlay')
  t.equal(overlayMtu(parseNetworkConfig({ Backend: { MTU: 1400 } }), 9000), 1400, 'explicit MTU wins')
})

t.test('a normalized config parses to itself', async (t) => {
  const c = parseNetworkConfig({
    Network: '10.10.0.0/20',
    SubnetLen: 26,
    SubnetMin: '10.10.0.64',
    Backend: { Type: 'host-gw' },
    IPMasq: false,
  })
  t.same(parseNetworkConfig(c), c)
  t.ok(sameNetworkConfig(c, parseNetworkConfig(JSON.parse(JSON.stringify(c)))))
  t.notOk(sameNetworkConfig(c, parseNetworkConfig({})))
  t.equal(c.SubnetMax, '10.10.15.192')
})

t.test('one-subnet range', async (t) => {
  const c = parseNetworkConfig({
    Network: '10.99.0.0/24',
    SubnetLen: 26,
    SubnetMin: '10.99.0.64',
    SubnetMax: '10.99.0.64',
  })
  t.equal(subnetCount(networkRanges(c)), 1)
})

const bad: [string, unknown, RegExp][] = [
  ['not an object', [], /must be a JSON object/],
  ['bad CIDR', { Network: '10.244.0.0/33' }, /Network: .* is not an IPv4 CIDR/],
  ['host bits', { Network: '10.244.1.0/16' }, /host bits set \(the network is 10\.244\.0\.0\/16\)/],
  [
    'subnet does not fit',
    { Network: '10.0.0.0/24', SubnetLen: 24 },
    /SubnetLen \/24 does not fit in Network 10\.0\.0\.0\/24/,
  ],
  ['subnet too long', { SubnetLen: 31 }, /SubnetLen must be an integer from 1 to 30/],
  [
    'min above max',
    { SubnetMin: '10.244.9.0', SubnetMax: '10.244.3.0' },
    /SubnetMin 10\.244\.9\.0 is above SubnetMax 10\.244\.3\.0/,
  ],
  ['min outside', { SubnetMin: '10.245.0.0' }, /SubnetMin 10\.245\.0\.0 is outside Network/],
  ['max unaligned', { SubnetMax: '10.244.3.7' }, /SubnetMax 10\.244\.3\.7 is not on a \/24 boundary/],
  [
    'unknown backend',
    { Backend: { Type: 'udp' } },
    /unknown backend type "udp" \(supported: vxlan, host-gw, wireguard\)/,
  ],
  ['bad VNI', { Backend: { VNI: 0 } }, /Backend\.VNI must be/],
  ['bad VNI big', { Backend: { VNI: 2 ** 24 } }, /Backend\.VNI must be/],
  ['bad port', { Backend: { Port: 70000 } }, /Backend\.Port must be/],
  ['bad MTU', { Backend: { MTU: 100 } }, /Backend\.MTU must be/],
  [
    'direct routing on host-gw',
    { Backend: { Type: 'host-gw', DirectRouting: true } },
    /DirectRouting applies to vxlan only/,
  ],
  ['typo with hint', { network: '10.1.0.0/16' }, /network is not a known field \(did you mean "Network"\?\)/],
  ['backend typo', { Backend: { type: 'vxlan' } }, /Backend\.type is not a known field/],
  ['IPMasq type', { IPMasq: 'yes' }, /IPMasq must be true or false/],
]
for (const [name, input, msg] of bad) {
  t.test(`refused: ${name}`, async (t) => {
    t.throws(() => parseNetworkConfig(input), { code: 'PLX_IPAM_CONFIG_INVALID', message: msg })
  })
}

t.test('all problems are reported at once', async (t) => {
  try {
    parseNetworkConfig({ Backend: { Type: 'udp', Port: 0 }, IPMasq: 1 })
    t.fail('accepted')
  } catch (err) {
    t.equal((err as { details: { problems: string[] } }).details.problems.length, 3)
  }
})
