import t from 'tap'
import { DropCounts } from '../../../src/datapath/firewall/drops.js'
import {
  ebView,
  parseEbSave,
  renderEbRestore,
  renderEbRule,
} from '../../../src/datapath/firewall/ebtables.js'
import { mergeBridge, splitSpec } from '../../../src/datapath/firewall/iptables.js'
import {
  checkSpec,
  type FirewallSpec,
  ipv6Hex,
  rulesOf,
  ruleTag,
} from '../../../src/datapath/firewall/model.js'
import { renderRule as nftRule } from '../../../src/datapath/firewall/nftables.js'
import { checkEndpoint, linkLocalOf, spoofSection } from '../../../src/datapath/firewall/spoof.js'

const a = { hostVeth: 'plx0123456789ab', mac: '02:AA:00:00:00:01', ipv4: '10.244.1.2' }
const b = { hostVeth: 'plxffffffffffff', mac: '02:aa:00:00:00:02', ipv4: '10.244.1.3', ipv6: 'FD00:0:0::3' }

t.test(
  'spoof: per veth, its MAC, IPv4 source, ARP sender; IPv6 only when it has an address; nothing else',
  async (t) => {
    const section = spoofSection([b, a])
    t.same(checkSpec({ sections: [section] }), [], 'both renderers can express it')
    t.same(
      section.rules.map((r) => `${r.id} ${r.action.type}`),
      [
        'plx0123456789ab-mac drop',
        'plx0123456789ab-ip drop',
        'plx0123456789ab-ip-ok return',
        'plx0123456789ab-arp-ip drop',
        'plx0123456789ab-arp-mac drop',
        'plx0123456789ab-arp-ok return',
        'plx0123456789ab-other drop',
        'plxffffffffffff-mac drop',
        'plxffffffffffff-ip drop',
        'plxffffffffffff-ip-ok return',
        'plxffffffffffff-arp-ip drop',
        'plxffffffffffff-arp-mac drop',
        'plxffffffffffff-arp-ok return',
        'plxffffffffffff-na-target drop',
        'plxffffffffffff-ip6-ok return',
        'plxffffffffffff-ip6-ll return',
        'plxffffffffffff-other drop',
      ],
      'sorted by veth; the catch-all drop last in each block',
    )
    const spec: FirewallSpec = { sections: [section] }
    const nft = rulesOf(spec, 'bridge').map(({ rule }) => nftRule('spoof', rule))
    t.match(
      nft[0],
      /^iifname "plx0123456789ab" ether saddr != 02:aa:00:00:00:01 counter drop comment/,
      'MAC lower-cased',
    )
    t.match(nft[1], /^iifname "plx0123456789ab" ether type ip ip saddr != 10\.244\.1\.2 counter drop/)
    t.match(nft[3], /^iifname "plx0123456789ab" ether type arp arp saddr ip != 10\.244\.1\.2 counter drop/)
    t.match(
      nft[4],
      /^iifname "plx0123456789ab" ether type arp arp saddr ether != 02:aa:00:00:00:01 counter drop/,
    )
    t.match(
      nft[13],
      /^iifname "plxffffffffffff" ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != \{ 0xfd000000000000000000000000000003, 0xfe8000000000000000aa00fffe000002 \} counter drop/,
      'a neighbour advertisement only for its own address or its EUI-64 link-local one',
    )
    t.match(
      nft[14],
      /^iifname "plxffffffffffff" ether type ip6 ip6 saddr fd00::3 return/,
      'IPv6 as the tools print it',
    )
    const eb = rulesOf(spec, 'bridge').map(({ rule }) => renderEbRule(rule))
    t.same(eb.slice(0, 7), [
      '-s ! 02:aa:00:00:00:01 -i plx0123456789ab -j DROP',
      '-p IPv4 -i plx0123456789ab --ip-src ! 10.244.1.2 -j DROP',
      '-p IPv4 -i plx0123456789ab -j RETURN',
      '-p ARP -i plx0123456789ab --arp-ip-src ! 10.244.1.2 -j DROP',
      '-p ARP -i plx0123456789ab --arp-mac-src ! 02:aa:00:00:00:01 -j DROP',
      '-p ARP -i plx0123456789ab -j RETURN',
      '-i plx0123456789ab -j DROP',
    ])
    t.equal(eb[14], '-p IPv6 -i plxffffffffffff --ip6-src fd00::3 -j RETURN')
  },
)

t.test('spoof: records that cannot be rendered are named', async (t) => {
  t.equal(checkEndpoint(a), undefined)
  t.match(checkEndpoint({ ...a, hostVeth: 'x"; drop' }), /not an interface name/)
  t.match(checkEndpoint({ ...a, mac: '02:aa' }), /not a MAC/)
  t.match(checkEndpoint({ ...a, ipv4: '10.244.1.300' }), /not an IPv4/)
  t.match(checkEndpoint({ ...a, ipv6: 'fd00::g' }), /not an IPv6/)
})

t.test('IPv6: link-local from the MAC as the kernel derives it; the 128-bit value for nft', async (t) => {
  t.equal(
    linkLocalOf('02:aa:00:00:00:02'),
    'fe80::aa:ff:fe00:2',
    'universal/local bit flipped, ff:fe inserted',
  )
  t.equal(linkLocalOf('52:54:00:12:34:56'), 'fe80::5054:ff:fe12:3456')
  t.equal(ipv6Hex('FD00:0:0::3'), 'fd000000000000000000000000000003')
  t.equal(ipv6Hex('1:2:3:4:5:6:7:8'), '00010002000300040005000600070008')
  t.equal(ipv6Hex('::'), '0'.repeat(32))
  t.equal(ipv6Hex('::ffff:1.2.3.4'), `${'0'.repeat(20)}ffff01020304`)
})

t.test(
  'iptables backend: the advertisement check goes to nftables, the view keeps the spec order',
  async (t) => {
    const spec: FirewallSpec = { sections: [spoofSection([b])] }
    const { xt, nft } = splitSpec(spec)
    const ids = (s: FirewallSpec) => rulesOf(s, 'bridge').map(({ rule }) => rule.id)
    t.same(ids(nft), ['plxffffffffffff-na-target'], 'what ebtables cannot read')
    t.equal(ids(xt).length, ids(spec).length - 1, 'ebtables: all the others')
    const tag = (s: FirewallSpec) => rulesOf(s, 'bridge').map((x) => ruleTag(x.section, x.rule))
    t.same(mergeBridge(tag(spec), tag(xt), tag(nft)), tag(spec), 'both as wanted: the spec, in order')
    const missing = mergeBridge(tag(spec), tag(xt), [])
    t.not(missing.join(), tag(spec).join(), 'the nft rule gone: drift')
    t.same(missing, tag(xt))
  },
)

t.test('bridge hook: layer-2 fields only there, each with its ethertype', async (t) => {
  const problems = checkSpec({
    sections: [
      {
        name: 'x',
        rules: [
          { id: 'a', hook: 'forward', match: { notSrcMac: '02:00:00:00:00:01' }, action: { type: 'drop' } },
          { id: 'b', hook: 'bridge', match: { dst: '10.0.0.1' }, action: { type: 'drop' } },
          { id: 'c', hook: 'bridge', match: { notArpSrc: '10.0.0.1' }, action: { type: 'drop' } },
          { id: 'd', hook: 'bridge', match: { iif: 'v' }, action: { type: 'masquerade' } },
          { id: 'e', hook: 'bridge', match: { notSrcMac: '02:AA:00:00:00:01' }, action: { type: 'drop' } },
          { id: 'f', hook: 'bridge', match: { notNaTarget: ['fd00::1'] }, action: { type: 'drop' } },
          {
            id: 'g',
            hook: 'bridge',
            match: { etherType: 'ipv6', notNaTarget: ['10.0.0.1'] },
            action: { type: 'drop' },
          },
        ],
      },
    ],
  })
  t.match(problems, [
    /x\/a": notSrcMac needs hook bridge/,
    /x\/b": dst cannot be matched in hook bridge/,
    /x\/c": notArpSrc needs etherType arp/,
    /x\/d": masquerade is not allowed in bridge/,
    /x\/e": notSrcMac .* is not a MAC address/,
    /x\/f": notNaTarget needs etherType ipv6/,
    /x\/g": notNaTarget must list IPv6 addresses/,
  ])
})

t.test(
  'ebtables: the dump names wanted rules by their printed form; edits touch only what differs',
  async (t) => {
    const spec: FirewallSpec = { sections: [spoofSection([a])] }
    const lines = rulesOf(spec, 'bridge').map(({ rule }) => renderEbRule(rule))
    const saved = [
      '*nat',
      ':PREROUTING ACCEPT',
      ':PLEXUS-BRIDGE RETURN',
      '[3:120] -A PREROUTING -j PLEXUS-BRIDGE',
      ...lines.map((l, i) => `[${i}:0] -A PLEXUS-BRIDGE ${l}`),
      '[0:0] -A PLEXUS-BRIDGE -j ACCEPT',
    ].join('\n')
    const dump = parseEbSave(saved)
    t.equal(dump.jumps, 1)
    const view = ebView(dump, spec)
    const tags = rulesOf(spec, 'bridge').map(({ section, rule }) => ruleTag(section, rule))
    t.same(view.rules, [...tags, '-j ACCEPT'], 'a foreign rule shows as itself')
    t.equal(view.packets[tags[1] as string], 1, 'packets by tag')
    t.equal(
      renderEbRestore(spec, dump),
      `*nat\n-D PLEXUS-BRIDGE ${lines.length + 1}\nCOMMIT\n`,
      'only the foreign rule goes',
    )
    const fresh = renderEbRestore(spec, parseEbSave(''))
    t.match(fresh, /^\*nat\n:PLEXUS-BRIDGE RETURN\n-A PLEXUS-BRIDGE -s ! 02:aa/)
    t.match(fresh, /-I PREROUTING 1 -j PLEXUS-BRIDGE\nCOMMIT\n$/)
  },
)

t.test(
  'drop counts: increments per section from the kernel counters, restarting rules counted from 0',
  async (t) => {
    const spec: FirewallSpec = { sections: [spoofSection([a])] }
    const [mac, , ok] = rulesOf(spec, 'bridge').map(({ section, rule }) => ruleTag(section, rule))
    const d = new DropCounts()
    t.same(
      [...d.observe(spec, { [mac as string]: 5, [ok as string]: 100 })],
      [['spoof', 5]],
      'returns are not drops',
    )
    t.same([...d.observe(spec, { [mac as string]: 7 })], [['spoof', 2]])
    t.same([...d.observe(spec, { [mac as string]: 7 })], [], 'nothing new')
    t.same([...d.observe(spec, { [mac as string]: 3 })], [['spoof', 3]], 'a rule made again counts from 0')
  },
)
