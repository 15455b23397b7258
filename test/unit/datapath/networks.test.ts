import t from 'tap'
import { ISOLATION_ORDER } from '../../../src/datapath/firewall/isolation.js'
import { checkSpec, expectedView, type Rule, rulesOf } from '../../../src/datapath/firewall/model.js'
import { type NetworksInput, networksSections } from '../../../src/datapath/firewall/networks.js'

const cluster = { name: 'plexus', cidr: '10.244.0.0/16', internal: false }
const blue = { name: 'blue', cidr: '10.50.0.0/16', subnet: '10.50.3.0/24', vni: 2, internal: false }
const red = { name: 'red', cidr: '10.60.0.0/16', vni: 3, internal: false }
const vault = { name: 'vault', cidr: '10.70.0.0/16', subnet: '10.70.1.0/24', vni: 4, internal: true }

const sections = (over: Partial<NetworksInput> = {}) =>
  networksSections({ cluster, bridges: [blue, red, vault], links: [], vxlanPort: 8472, ...over })
/** both sections' rules, in the order a packet meets them */
const section = (over: Partial<NetworksInput> = {}) => {
  const [links, networks] = sections(over)
  return { name: 'both', rules: [...links.rules, ...networks.rules], links, networks }
}

/** the first forward rule a packet from src to dst (tcp port) matches, by its action */
function verdict(s: { rules: Rule[] }, src: string, dst: string, port = 80): string | undefined {
  const inCidr = (ip: string, cidr: string) => {
    const [base, len] = cidr.split('/') as [string, string]
    const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0)
    const size = 2 ** (32 - Number(len))
    return Math.floor(n(ip) / size) === Math.floor(n(base) / size)
  }
  for (const { rule } of rulesOf({ sections: [{ name: 's', rules: s.rules }] }, 'forward')) {
    const m = rule.match
    if (m.iif || m.ctState) continue
    if (m.src && !inCidr(src, m.src)) continue
    if (m.notSrc && inCidr(src, m.notSrc)) continue
    if (m.dst && !inCidr(dst, m.dst)) continue
    if (m.notDst && inCidr(dst, m.notDst)) continue
    if (m.dport !== undefined && m.dport !== port) continue
    return rule.action.type
  }
  return undefined
}

t.test('the section is valid for both renderers', async (t) => {
  const s = sections({ links: [{ from: 'blue', to: 'red', ports: [{ port: 8080, protocol: 'tcp' }] }] })
  t.same(checkSpec({ sections: s }), [])
  t.ok(expectedView({ sections: s }))
  t.ok((s[0].order ?? 100) < ISOLATION_ORDER, "links come before the VTEPs' source rules")
})

t.test('no bridge network: no rules', async (t) => {
  t.same(section({ bridges: [] }).rules, [])
  t.same(section({ bridges: [], links: [{ from: 'plexus', to: 'blue', ports: [] }] }).rules, [])
})

t.test(
  'between networks: dropped both ways, the cluster network included; within one: accepted',
  async (t) => {
    const s = section()
    t.equal(verdict(s, '10.50.3.2', '10.50.9.2'), 'accept')
    t.equal(verdict(s, '10.50.3.2', '10.60.1.2'), 'drop')
    t.equal(verdict(s, '10.60.1.2', '10.50.3.2'), 'drop')
    t.equal(verdict(s, '10.244.1.2', '10.50.3.2'), 'drop')
    t.equal(verdict(s, '10.50.3.2', '10.244.1.2'), 'drop')
    t.equal(verdict(s, '10.244.1.2', '10.244.2.2'), undefined, 'cluster to cluster is the cluster section’s')
    t.equal(verdict(s, '10.50.3.2', '198.51.100.1'), 'accept', 'out of a non-internal network')
  },
)

t.test('a link opens its direction on its ports only, with replies', async (t) => {
  const s = section({ links: [{ from: 'blue', to: 'red', ports: [{ port: 8080, protocol: 'tcp' }] }] })
  t.equal(verdict(s, '10.50.3.2', '10.60.1.2', 8080), 'accept')
  t.equal(verdict(s, '10.50.3.2', '10.60.1.2', 8081), 'drop')
  t.equal(verdict(s, '10.60.1.2', '10.50.3.2', 8080), 'drop', 'the other way is not opened')
  const reply = s.rules.find((r) => r.match.ctState)
  t.same(reply?.match, { src: '10.60.0.0/16', dst: '10.50.0.0/16', ctState: ['established', 'related'] })
  const all = section({ links: [{ from: 'blue', to: 'red', ports: [] }] })
  t.equal(verdict(all, '10.50.3.2', '10.60.1.2', 1), 'accept', 'no ports: every port')
  const unknown = section({ links: [{ from: 'blue', to: 'gone', ports: [] }] })
  t.same(unknown.rules, section().rules, 'a link to an unknown network adds nothing')
})

t.test('an internal network: no way out or in, no masquerade', async (t) => {
  const s = section()
  t.equal(verdict(s, '10.70.1.2', '198.51.100.1'), 'drop')
  t.equal(verdict(s, '198.51.100.1', '10.70.1.2'), 'drop')
  t.equal(verdict(s, '10.70.1.2', '10.70.5.2'), 'accept')
  const masq = s.rules.filter((r) => r.action.type === 'masquerade').map((r) => r.match.src)
  t.same(masq, ['10.50.0.0/16', '10.60.0.0/16'])
})

t.test('a bridge with a lease here is guarded as plexus0: sources, the VXLAN port, its VTEP', async (t) => {
  const s = section()
  const guards = s.networks.rules.filter((r) => r.match.iif)
  // blue and vault hold a subnet here, red does not
  t.equal(guards.length, 10)
  t.ok(guards.some((r) => r.match.iif?.startsWith('plxb-') && r.match.notSrc === '10.50.3.0/24'))
  t.ok(guards.some((r) => r.match.iif === 'plexus.2' && r.match.notSrc === '10.50.0.0/16'))
  t.ok(guards.some((r) => r.match.dport === 8472 && r.hook === 'input'))
})

t.test('beside a cluster network that is not vxlan, the VXLAN port takes the members only', async (t) => {
  const input = sections({ vxlanMembers: ['192.0.2.12', '192.0.2.11', '192.0.2.12'] })[1].rules.filter(
    (r) => r.hook === 'input' && r.match.dport === 8472 && !r.match.iif,
  )
  t.same(
    input.map((r) => [r.id, r.match.src, r.action.type]),
    [
      ['vxlan-member-192-0-2-11', '192.0.2.11', 'return'],
      ['vxlan-member-192-0-2-12', '192.0.2.12', 'return'],
      ['vxlan-non-member', undefined, 'drop'],
    ],
  )
  const [, networks] = sections({ vxlanMembers: ['192.0.2.11'] })
  t.same(checkSpec({ sections: [networks] }), [], 'valid for both renderers')
  t.equal(networks.rules.at(-1)?.id, 'vxlan-non-member', "last: a member's return skips none of the section")
  t.notOk(
    sections()[1].rules.some((r) => r.id === 'vxlan-non-member'),
    'a vxlan cluster network guards the port in its isolation section',
  )
})
