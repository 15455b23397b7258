import t from 'tap'
import { DropCounts } from '../../../src/datapath/firewall/drops.js'
import {
  ebLayout,
  ebtablesCan,
  ebView,
  parseEbSave,
  renderEbRemove,
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
import {
  afterEdit,
  renderRule as nftRule,
  parseTable,
  renderEdit,
  renderScript,
} from '../../../src/datapath/firewall/nftables.js'
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

t.test(
  'spoof: an unchanged endpoint keeps its rule objects from one section to the next, so its tags are not hashed again',
  async (t) => {
    const first = spoofSection([a, b])
    const moved = { ...b, ipv4: '10.244.1.9' }
    const second = spoofSection([{ ...a }, moved])
    const ofA = (s: typeof first) => s.rules.filter((r) => r.match.iif === a.hostVeth)
    const ofB = (s: typeof first) => s.rules.filter((r) => r.match.iif === b.hostVeth)
    t.ok(
      ofA(second).every((r, i) => r === ofA(first)[i]),
      'a: the same objects',
    )
    t.ok(
      ofB(second).every((r, i) => r !== ofB(first)[i]),
      'b changed: new objects',
    )
    const tags = (s: typeof first) => s.rules.map((r) => ruleTag('spoof', r))
    t.same(tags(spoofSection([a, moved])), tags(second), 'a tag is the content, whatever the object')
    t.not(
      tags(second)[ofA(second).length + 1],
      tags(first)[ofA(first).length + 1],
      "b's address is in its tag",
    )
    t.equal(
      spoofSection([a, a]).rules.length,
      2 * ofA(first).length,
      'an endpoint listed twice is rendered twice, as before',
    )
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

/** ebtables-nft-save -c -t nat as it prints our chains (chains: name → rules) */
function ebSaved(chains: [string, string[]][], jumps = 1): string {
  return [
    '*nat',
    ':PREROUTING ACCEPT',
    ...chains.map(([name]) => `:${name} RETURN`),
    ...Array.from({ length: jumps }, () => '[3:120] -A PREROUTING -j PLEXUS-BRIDGE'),
    ...chains.flatMap(([name, lines]) => lines.map((l, i) => `[${i}:0] -A ${name} ${l}`)),
  ].join('\n')
}

t.test(
  'ebtables: a chain per port, entered by one jump each; the dump names wanted rules by their printed form',
  async (t) => {
    const spec: FirewallSpec = { sections: [spoofSection([a, b])] }
    const { chains, rules } = ebLayout(spec)
    const la = rulesOf(spec, 'bridge')
      .filter(({ rule }) => rule.match.iif === a.hostVeth && ebtablesCan(rule))
      .map(({ rule }) => renderEbRule(rule))
    t.same(
      chains.get('PLEXUS-BRIDGE'),
      [`-i ${a.hostVeth} -j PLEXUS-P-${a.hostVeth}`, `-i ${b.hostVeth} -j PLEXUS-P-${b.hostVeth}`],
      'one jump per port',
    )
    t.same(chains.get(`PLEXUS-P-${a.hostVeth}`), la, "the port's rules, in order, in its chain")
    t.same(
      rules.map((r) => r.tag),
      rulesOf(spec, 'bridge').map(({ section, rule }) => ruleTag(section, rule)),
      'every rule has its place',
    )

    const fresh = renderEbRestore(spec, parseEbSave(''))
    t.match(
      fresh,
      /^\*nat\n:PLEXUS-BRIDGE RETURN\n:PLEXUS-P-plx0123456789ab RETURN\n:PLEXUS-P-plxffffffffffff RETURN\n/,
    )
    t.ok(
      fresh.indexOf(`-A PLEXUS-P-${a.hostVeth} ${la[0]}`) < fresh.indexOf('-A PLEXUS-BRIDGE -i'),
      'a port chain is filled before the jump to it',
    )
    t.match(fresh, /-I PREROUTING 1 -j PLEXUS-BRIDGE\nCOMMIT\n$/)

    // as written, plus a foreign rule in a's chain
    const held = [...chains].map(([name, lines]): [string, string[]] =>
      name === `PLEXUS-P-${a.hostVeth}` ? [name, [...lines, '-j ACCEPT']] : [name, lines],
    )
    const dump = parseEbSave(ebSaved(held))
    t.equal(dump.jumps, 1)
    const view = ebView(dump, spec)
    const tags = rules.map((r) => r.tag)
    t.same(
      view.rules,
      [...tags.slice(0, la.length), '-j ACCEPT', ...tags.slice(la.length)],
      'in the order a frame meets them; a foreign rule shows as itself',
    )
    t.equal(view.packets[tags[1] as string], 1, 'packets by tag, from the port chain')
    t.equal(
      renderEbRestore(spec, dump),
      `*nat\n-D PLEXUS-P-${a.hostVeth} ${la.length + 1}\nCOMMIT\n`,
      'only the foreign rule goes',
    )
    t.equal(renderEbRestore(spec, parseEbSave(ebSaved([...chains]))), '*nat\nCOMMIT\n', 'as wanted: no edit')
    const wrongPort = [...chains].map(([name, lines]): [string, string[]] =>
      name === 'PLEXUS-BRIDGE'
        ? [name, lines.map((l) => l.replace(`-i ${a.hostVeth} `, `-i ${b.hostVeth} `))]
        : [name, lines],
    )
    t.same(
      ebView(parseEbSave(ebSaved(wrongPort)), spec).rules.slice(0, 1),
      [`-i ${b.hostVeth} -j PLEXUS-P-${a.hostVeth}`],
      "a jump from another port into a port's chain shows as itself",
    )
  },
)

t.test(
  'ebtables: the flat chain of an earlier release differs from the view, and is rewritten as port chains',
  async (t) => {
    const spec: FirewallSpec = { sections: [spoofSection([a])] }
    const flat = rulesOf(spec, 'bridge').map(({ rule }) => renderEbRule(rule))
    const dump = parseEbSave(ebSaved([['PLEXUS-BRIDGE', flat]]))
    t.same(ebView(dump, spec).rules, flat, 'a rule outside its chain is not named as wanted')
    const edit = renderEbRestore(spec, dump)
    t.match(edit, /^\*nat\n:PLEXUS-P-plx0123456789ab RETURN\n/)
    t.equal(
      (edit.match(/^-D PLEXUS-BRIDGE /gm) ?? []).length,
      flat.length,
      'the flat rules leave PLEXUS-BRIDGE',
    )
    t.match(edit, `-A PLEXUS-BRIDGE -i ${a.hostVeth} -j PLEXUS-P-${a.hostVeth}`)
  },
)

t.test('ebtables: a port chain no longer wanted is emptied and deleted after its jump goes', async (t) => {
  const two = ebLayout({ sections: [spoofSection([a, b])] }).chains
  const spec: FirewallSpec = { sections: [spoofSection([b])] }
  const edit = renderEbRestore(spec, parseEbSave(ebSaved([...two])))
  t.match(
    edit,
    /^\*nat\n-D PLEXUS-BRIDGE 1\n-F PLEXUS-P-plx0123456789ab\n-X PLEXUS-P-plx0123456789ab\nCOMMIT\n$/,
  )
  t.equal(
    renderEbRemove(parseEbSave(ebSaved([...two]))),
    '*nat\n-D PREROUTING -j PLEXUS-BRIDGE\n-F PLEXUS-BRIDGE\n-F PLEXUS-P-plx0123456789ab\n-F PLEXUS-P-plxffffffffffff\n-X PLEXUS-BRIDGE\n-X PLEXUS-P-plx0123456789ab\n-X PLEXUS-P-plxffffffffffff\nCOMMIT\n',
    'remove: every chain of ours, PLEXUS-BRIDGE first',
  )
})

t.test(
  'ebtables: a run of a port stays in PLEXUS-BRIDGE when a later rule can match its frames, or when it is one rule',
  async (t) => {
    const drop = { type: 'drop' } as const
    const spec: FirewallSpec = {
      sections: [
        {
          name: 'x',
          rules: [
            { id: 'a', hook: 'bridge', match: { iif: 'va', etherType: 'ipv4' }, action: { type: 'return' } },
            { id: 'b', hook: 'bridge', match: { iif: 'vb', etherType: 'ipv4' }, action: { type: 'return' } },
            { id: 'c', hook: 'bridge', match: { iif: 'vb' }, action: drop },
            { id: 'd', hook: 'bridge', match: { etherType: 'ipv6' }, action: drop },
            { id: 'e', hook: 'bridge', match: { iif: 've' }, action: drop },
            { id: 'f', hook: 'bridge', match: { iif: 'vc', etherType: 'ipv4' }, action: { type: 'return' } },
            { id: 'g', hook: 'bridge', match: { iif: 'vc' }, action: drop },
          ],
        },
      ],
    }
    t.same(
      ebLayout(spec).chains.get('PLEXUS-BRIDGE'),
      [
        '-p IPv4 -i va -j RETURN',
        '-p IPv4 -i vb -j RETURN',
        '-i vb -j DROP',
        '-p IPv6 -j DROP',
        '-i ve -j DROP',
        '-i vc -j PLEXUS-P-vc',
      ],
      'va, vb: a rule with no port follows, so a RETURN in a port chain would go on to it; ve: a run of one rule',
    )
  },
)

t.test(
  'nftables: a chain per port in `bridge plexus`, made before the jump to it; a flat chain rewritten',
  async (t) => {
    const spec: FirewallSpec = { sections: [spoofSection([a, b])] }
    const bridge = rulesOf(spec, 'bridge')
    const ofA = bridge.filter(({ rule }) => rule.match.iif === a.hostVeth)
    const script = renderScript(spec, ['bridge'])
    const chainA = script.indexOf(`\tchain port-${a.hostVeth} {`)
    t.ok(
      chainA > 0 && chainA < script.indexOf('\tchain prerouting {'),
      'a port chain before the chain that jumps to it',
    )
    t.match(
      script,
      `iifname "${a.hostVeth}" jump port-${a.hostVeth} comment "plexus:port/port-${a.hostVeth}"`,
    )

    // as an earlier release left it: every rule in prerouting, handles from 10
    const listing = (rules: { chain: string; tag: string }[], chains: string[]) =>
      JSON.stringify({
        nftables: [
          ...['prerouting', ...chains].map((name) => ({
            chain: { family: 'bridge', name, ...(name === 'prerouting' ? { hook: 'prerouting' } : {}) },
          })),
          ...rules.map((r, i) => ({
            rule: { family: 'bridge', chain: r.chain, comment: r.tag, handle: 10 + i },
          })),
        ],
      })
    const flat = parseTable(
      [
        listing(
          bridge.map(({ section, rule }) => ({ chain: 'prerouting', tag: ruleTag(section, rule) })),
          [],
        ),
      ],
      ['bridge'],
    )
    const edit = renderEdit(spec, flat).trim().split('\n')
    t.equal(edit[0], `add chain bridge plexus port-${a.hostVeth}`)
    t.equal(edit.filter((l) => l.startsWith(`add rule bridge plexus port-${a.hostVeth} `)).length, ofA.length)
    t.equal(
      edit.filter((l) => l.startsWith('delete rule bridge plexus prerouting ')).length,
      bridge.length,
      'the flat rules go',
    )
    const echo = edit.map((l, i) => (l.startsWith('add rule') ? `${l} # handle ${100 + i}` : l)).join('\n')
    const after = afterEdit(spec, flat, echo)
    t.same(
      after?.rules.bridge.map((r) => r.tag),
      [`plexus:port/port-${a.hostVeth}`, `plexus:port/port-${b.hostVeth}`],
      'prerouting: the jumps',
    )
    t.equal(after && renderEdit(spec, after), '', 'after the edit, in step')

    // a port gone: its jump, then its chain
    const laidOut = listing(
      [
        { chain: 'prerouting', tag: `plexus:port/port-${a.hostVeth}` },
        ...ofA.map(({ section, rule }) => ({ chain: `port-${a.hostVeth}`, tag: ruleTag(section, rule) })),
      ],
      [`port-${a.hostVeth}`],
    )
    t.equal(
      renderEdit({ sections: [spoofSection([])] }, parseTable([laidOut], ['bridge'])),
      `delete rule bridge plexus prerouting handle 10\nflush chain bridge plexus port-${a.hostVeth}\ndelete chain bridge plexus port-${a.hostVeth}\n`,
    )
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
