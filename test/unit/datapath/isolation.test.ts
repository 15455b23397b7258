import t from 'tap'
import { renderRule as iptablesRule } from '../../../src/datapath/firewall/iptables.js'
import { isolationSection } from '../../../src/datapath/firewall/isolation.js'
import { checkSpec, rulesOf } from '../../../src/datapath/firewall/model.js'
import { renderRule as nftRule } from '../../../src/datapath/firewall/nftables.js'
import { cidrOf } from '../../../src/ipam/cidr.js'
import { parseNetworkConfig } from '../../../src/ipam/config.js'

const subnet = cidrOf('10.244.1.0/24')

t.test('isolation: forged sources and raw VXLAN from containers, VXLAN only from members', async (t) => {
  const network = parseNetworkConfig({
    Network: '10.244.0.0/16',
    Backend: { Type: 'vxlan', Port: 4789, VNI: 7 },
  })
  const section = isolationSection({ network, subnet, members: ['192.0.2.12', '192.0.2.11', '192.0.2.12'] })
  t.same(checkSpec({ sections: [section] }), [], 'both renderers can express it')
  const input = rulesOf({ sections: [section] }, 'input').map(({ rule }) => nftRule('isolation', rule))
  t.match(input, [
    /^iifname "plexus0" ip saddr != 10\.244\.1\.0\/24 counter drop/,
    /^iifname "plexus0" udp dport 4789 counter drop/,
    /^ip saddr 192\.0\.2\.11 udp dport 4789 return/,
    /^ip saddr 192\.0\.2\.12 udp dport 4789 return/,
    /^udp dport 4789 counter drop/,
  ])
  t.equal(input.length, 5, 'one return per member, however often it is listed')
  const forward = rulesOf({ sections: [section] }, 'forward').map(({ rule }) =>
    iptablesRule('isolation', 'forward', rule),
  )
  t.match(forward, [
    /^-A PLEXUS-FORWARD ! -s 10\.244\.1\.0\/24 -i plexus0 .* -j DROP$/,
    /^-A PLEXUS-FORWARD -i plexus0 -p udp -m udp --dport 4789 .* -j DROP$/,
    /^-A PLEXUS-FORWARD ! -s 10\.244\.0\.0\/16 -i plexus\.7 .* -j DROP$/,
  ])
})

t.test('isolation: a member joining adds one rule and keeps the ids of the others', async (t) => {
  const network = parseNetworkConfig({ Network: '10.244.0.0/16' })
  const ids = (members: string[]) => isolationSection({ network, subnet, members }).rules.map((r) => r.id)
  const before = ids(['192.0.2.11', '192.0.2.13'])
  const after = ids(['192.0.2.11', '192.0.2.12', '192.0.2.13'])
  t.same(
    after.filter((id) => !before.includes(id)),
    ['vxlan-member-192-0-2-12'],
  )
})

t.test('isolation: host-gw has no VXLAN port to guard, forged sources are still dropped', async (t) => {
  const network = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } })
  const section = isolationSection({ network, subnet, members: ['192.0.2.11'] })
  t.same(
    section.rules.map((r) => r.id),
    ['ctr-spoof-fwd', 'ctr-spoof-in'],
  )
})
