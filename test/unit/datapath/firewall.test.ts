import t from 'tap'
import {
  dumpOf,
  parseSave,
  renderRemove,
  renderRestore,
  viewOf,
} from '../../../src/datapath/firewall/iptables.js'
import {
  chainEdit,
  checkSpec,
  clusterSection,
  expectedView,
  type FirewallSpec,
  type FirewallView,
  HOOKS,
  type Rule,
  rulesOf,
  ruleTag,
  type Section,
  sameView,
} from '../../../src/datapath/firewall/model.js'
import {
  afterEdit,
  type NftTable,
  parseListing,
  renderEdit,
  renderScript,
} from '../../../src/datapath/firewall/nftables.js'
import { edits } from '../../../src/datapath/firewall/xtables.js'
import { parseNetworkConfig } from '../../../src/ipam/config.js'

const spec: FirewallSpec = { sections: [clusterSection(parseNetworkConfig({}))] }

/** a published port: DNAT in prerouting, hairpin masquerade first in postrouting */
const port: Section = {
  name: 'ports',
  order: 50,
  rules: [
    {
      id: 'dnat-18080',
      hook: 'prerouting',
      match: { proto: 'tcp', dport: 18080, dstLocal: true },
      action: { type: 'dnat', to: '10.244.1.5', port: 80 },
    },
    {
      id: 'hairpin',
      hook: 'postrouting',
      match: { src: '10.244.1.5', dst: '10.244.1.5' },
      action: { type: 'masquerade' },
    },
  ],
}
const withPort: FirewallSpec = { sections: [...spec.sections, port] }

/** What withPort must program, written out by hand: section/rule per hook, in order. */
const WITH_PORT = {
  hooked: true,
  rules: {
    forward: ['cluster/fwd-from-cluster', 'cluster/fwd-to-cluster'],
    input: [],
    prerouting: ['ports/dnat-18080'],
    output: [],
    postrouting: ['ports/hairpin', 'cluster/nat-inside', 'cluster/nat-multicast', 'cluster/nat-leaving'],
    bridge: [],
  },
}

/** A view with each rule tag cut to section/id (the hash after # follows the content; tested apart). */
function idsOf(v: FirewallView) {
  const rules = Object.fromEntries(
    HOOKS.map((h) => [
      h,
      v.rules[h].map((tag) => /^plexus:([^#]+)#[0-9a-f]{8}$/.exec(tag)?.[1] ?? `bad tag ${tag}`),
    ]),
  )
  return { hooked: v.hooked, rules }
}

t.test('cluster section: forward both ways, masquerade leaving only', async (t) => {
  const rules = spec.sections[0]?.rules ?? []
  t.same(
    rules.map((r) => `${r.hook} ${r.id} ${r.action.type}`),
    [
      'forward fwd-from-cluster accept',
      'forward fwd-to-cluster accept',
      'postrouting nat-inside return',
      'postrouting nat-multicast return',
      'postrouting nat-leaving masquerade',
    ],
  )
  const noMasq = clusterSection(parseNetworkConfig({ IPMasq: false }))
  t.same(
    noMasq.rules.map((r) => r.hook),
    ['forward', 'forward'],
    'IPMasq off: no NAT rules',
  )
})

t.test('rule tags change with the rule content', async (t) => {
  const r = spec.sections[0]?.rules[0]
  if (!r) throw new Error('no rule')
  t.match(ruleTag('cluster', r), /^plexus:cluster\/fwd-from-cluster#[0-9a-f]{8}$/)
  t.not(ruleTag('cluster', r), ruleTag('cluster', { ...r, match: { src: '10.0.0.0/8' } }))
})

t.test(
  'iptables: restore input declares our chains, adds missing jumps once, drops duplicates',
  async (t) => {
    const empty = parseSave('')
    const text = renderRestore(spec, empty)
    t.match(text, /^\*filter\n:PLEXUS-FORWARD - \[0:0\]\n:PLEXUS-INPUT - \[0:0\]\n/)
    t.match(
      text,
      /-A PLEXUS-FORWARD -s 10\.244\.0\.0\/16 -m comment --comment "plexus:cluster\/fwd-from-cluster#[0-9a-f]{8}" -j ACCEPT/,
    )
    t.match(
      text,
      /-A PLEXUS-POSTROUTING -s 10\.244\.0\.0\/16 ! -d 10\.244\.0\.0\/16 -m comment .* -j MASQUERADE/,
    )
    t.match(text, /-I FORWARD 1 -m comment --comment plexus-hook -j PLEXUS-FORWARD/)
    t.notMatch(
      text,
      /-[FXP] (FORWARD|INPUT|OUTPUT|PREROUTING|POSTROUTING)\b/,
      'never flushes, deletes or sets policy on built-in chains',
    )
    const saved = [
      '*filter',
      ':FORWARD DROP [0:0]',
      ':PLEXUS-FORWARD - [0:0]',
      '-A FORWARD -m comment --comment plexus-hook -j PLEXUS-FORWARD',
      '-A FORWARD -m comment --comment plexus-hook -j PLEXUS-FORWARD',
      '-A FORWARD -s 198.51.100.0/24 -j DROP',
      '-A PLEXUS-FORWARD -s 10.244.0.0/16 -m comment --comment "plexus:cluster/x#1" -j ACCEPT',
      '-A PLEXUS-FORWARD -j DROP',
      'COMMIT',
    ].join('\n')
    const dump = parseSave(saved)
    t.equal(dump.jumps.get('PLEXUS-FORWARD'), 2)
    t.same(
      dump.rules.get('PLEXUS-FORWARD'),
      ['plexus:cluster/x#1', '-A PLEXUS-FORWARD -j DROP'],
      'a foreign rule in our chain shows up as itself',
    )
    t.notOk(viewOf(dump).hooked, 'duplicate jump and missing chains: not hooked')
    const again = renderRestore(spec, dump)
    t.notMatch(again, /-I FORWARD/)
    t.match(again, /-D FORWARD -m comment --comment plexus-hook -j PLEXUS-FORWARD\n/)
    t.match(renderRemove(dump), /-D FORWARD .*\n-D FORWARD .*\n-F PLEXUS-FORWARD\n-X PLEXUS-FORWARD\n/)
  },
)

t.test('chainEdit: only what differs, new rules placed before the kept rule that follows them', async (t) => {
  t.same(chainEdit(['a', 'b'], ['a', 'b']), { deletes: [], inserts: [] })
  t.same(chainEdit(['a', 'x', 'b'], ['n', 'a', 'm', 'b', 'z']), {
    deletes: [1],
    inserts: [{ want: 0, before: 0 }, { want: 2, before: 2 }, { want: 4 }],
  })
  t.same(chainEdit([], ['a', 'b']), { deletes: [], inserts: [{ want: 0 }, { want: 1 }] })
})

t.test('iptables: a batch deletes and inserts only the rules that differ', async (t) => {
  t.equal(renderRestore(spec, dumpOf(spec)), '*filter\nCOMMIT\n*nat\nCOMMIT\n', 'in step: nothing to do')
  t.notOk(edits(renderRestore(spec, dumpOf(spec))), 'in step: no process is run')
  t.ok(edits(renderRestore(withPort, dumpOf(spec))), 'a new port: an edit to run')
  t.ok(edits(renderRestore(spec, { ...dumpOf(spec), jumps: new Map() })), 'a missing jump: an edit to run')

  const add = renderRestore(withPort, dumpOf(spec)).split('\n')
  t.same(
    add.filter((l) => /^[-:]/.test(l)).map((l) => l.split(' -')[0]),
    ['-A PLEXUS-PREROUTING', '-I PLEXUS-POSTROUTING 1'],
    'a new port: its two rules inserted in place, no chain flushed',
  )
  t.same(idsOf(viewOf(parseSave(replay(dumpOf(spec), add)))), WITH_PORT, 'the port rules in place, in order')

  const drop = renderRestore(spec, dumpOf(withPort)).split('\n')
  t.same(
    drop.filter((l) => /^[-:]/.test(l)),
    ['-D PLEXUS-PREROUTING 1', '-D PLEXUS-POSTROUTING 1'],
    'a removed port: its rules deleted by number',
  )

  // drift: a foreign rule between ours and one of ours gone
  const drifted = dumpOf(withPort)
  drifted.rules.set('PLEXUS-POSTROUTING', [
    ...(drifted.rules.get('PLEXUS-POSTROUTING') ?? []).slice(0, 2),
    '-A PLEXUS-POSTROUTING -j ACCEPT',
    ...(drifted.rules.get('PLEXUS-POSTROUTING') ?? []).slice(3),
  ])
  const repair = renderRestore(withPort, drifted).split('\n')
  t.same(idsOf(viewOf(parseSave(replay(drifted, repair)))), WITH_PORT, 'drift repaired')
  t.notOk(
    repair.some((l) => l.startsWith(':')),
    'chains it knows are edited, not flushed',
  )
})

/**
 * Applies restore lines to a dump the way iptables-restore would (only the
 * -D n / -I n / -A / :chain forms renderRestore writes), and prints the
 * result as iptables-save would: the test checks the edits, not the strings.
 */
function replay(dump: ReturnType<typeof dumpOf>, lines: string[]): string {
  const chains = new Map([...dump.chains].map((c) => [c, [...(dump.rules.get(c) ?? [])]]))
  for (const l of lines) {
    const decl = /^:(\S+)/.exec(l)
    if (decl?.[1]) chains.set(decl[1], [])
    const del = /^-D (PLEXUS-\S+) (\d+)$/.exec(l)
    if (del?.[1]) chains.get(del[1])?.splice(Number(del[2]) - 1, 1)
    const ins = /^-I (PLEXUS-\S+) (\d+) .*--comment "([^"]+)"/.exec(l)
    if (ins?.[1]) chains.get(ins[1])?.splice(Number(ins[2]) - 1, 0, ins[3] as string)
    const app = /^-A (PLEXUS-\S+) .*--comment "([^"]+)"/.exec(l)
    if (app?.[1]) chains.get(app[1])?.push(app[2] as string)
  }
  const parents: Record<string, string> = {
    'PLEXUS-FORWARD': 'FORWARD',
    'PLEXUS-INPUT': 'INPUT',
    'PLEXUS-PREROUTING': 'PREROUTING',
    'PLEXUS-OUTPUT': 'OUTPUT',
    'PLEXUS-POSTROUTING': 'POSTROUTING',
  }
  return [...chains]
    .flatMap(([c, tags]) => [
      `:${c} - [0:0]`,
      `-A ${parents[c]} -m comment --comment plexus-hook -j ${c}`,
      ...tags.map((tag) => (tag.startsWith('-A ') ? tag : `-A ${c} -m comment --comment "${tag}" -j ACCEPT`)),
    ])
    .join('\n')
}

/** the table as nft would hold spec, with made-up handles from 10 */
function nftTable(sp: FirewallSpec): NftTable {
  let handle = 10
  const rules = Object.fromEntries(
    HOOKS.map((h) => [h, rulesOf(sp, h).map((x) => ({ tag: ruleTag(x.section, x.rule), handle: handle++ }))]),
  ) as NftTable['rules']
  return { hooked: true, rules, ports: new Map(), packets: {} }
}

t.test('nftables: a batch edits the table by handle, and learns the new handles from the echo', async (t) => {
  t.equal(renderEdit(spec, nftTable(spec)), '', 'in step: nothing to do')
  const before = nftTable(spec)
  const add = renderEdit(withPort, before).trim().split('\n')
  const firstPost = before.rules.postrouting[0]?.handle
  t.equal(add.length, 2)
  t.match(
    add[0],
    /^add rule inet plexus prerouting fib daddr type local tcp dport 18080 dnat ip to 10\.244\.1\.5:80 comment "plexus:ports\/dnat-18080#/,
  )
  t.match(
    add[1],
    new RegExp(`^insert rule inet plexus postrouting position ${firstPost} ip saddr 10\\.244\\.1\\.5 `),
    'the hairpin goes before the first cluster rule',
  )
  t.notMatch(add.join('\n'), /delete|flush|table/, 'nothing deleted, no table replaced')

  const echo = [
    `add rule inet plexus prerouting fib daddr type local tcp dport 18080 dnat ip to 10.244.1.5:80 comment "${ruleTag('ports', port.rules[0] as Rule)}" # handle 40`,
    `insert rule inet plexus postrouting ip saddr 10.244.1.5 ip daddr 10.244.1.5 masquerade comment "${ruleTag('ports', port.rules[1] as Rule)}" # handle 41`,
    '# new generation 7 by process 99 (nft)',
  ].join('\n')
  const after = afterEdit(withPort, before, echo)
  t.same(
    after?.rules.prerouting.map((r) => r.handle),
    [40],
  )
  t.same(
    after?.rules.postrouting.map((r) => r.handle),
    [41, ...before.rules.postrouting.map((r) => r.handle)],
  )
  t.equal(afterEdit(withPort, before, ''), undefined, 'a handle it cannot tell: list before the next batch')

  const drop = renderEdit(spec, after as NftTable)
    .trim()
    .split('\n')
  t.same(drop, [
    'delete rule inet plexus prerouting handle 40',
    'delete rule inet plexus postrouting handle 41',
  ])

  // drift: a foreign rule (no comment) in our chain goes, by its handle
  const drifted = nftTable(spec)
  drifted.rules.forward.splice(1, 0, { tag: 'handle 99', handle: 99 })
  t.same(renderEdit(spec, drifted).trim().split('\n'), ['delete rule inet plexus forward handle 99'])
})

t.test('nftables: one transaction replaces only our tables', async (t) => {
  const script = renderScript(spec)
  const lines = script.split('\n')
  t.same(lines.slice(0, 5), [
    'table inet plexus',
    'delete table inet plexus',
    'table bridge plexus',
    'delete table bridge plexus',
    'table inet plexus {',
  ])
  t.match(
    script,
    /table bridge plexus \{\n\tchain prerouting \{\n\t\ttype filter hook prerouting priority filter;/,
  )
  t.match(
    script,
    /chain forward \{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tip saddr 10\.244\.0\.0\/16 accept comment "plexus:cluster\/fwd-from-cluster#/,
  )
  t.match(script, /ip saddr 10\.244\.0\.0\/16 ip daddr != 10\.244\.0\.0\/16 masquerade comment/)
  t.notMatch(script, /flush ruleset|table ip(6)? |table (inet|bridge) (?!plexus)/, 'touches no other table')
  const listing = JSON.stringify({
    nftables: [
      { chain: { family: 'inet', name: 'forward', hook: 'forward' } },
      { rule: { family: 'inet', chain: 'forward', comment: 'plexus:cluster/a#1', handle: 3 } },
      {
        rule: { family: 'inet', chain: 'forward', handle: 4, expr: [{ counter: { packets: 9, bytes: 0 } }] },
      },
    ],
  })
  const bridge = JSON.stringify({
    nftables: [
      { chain: { family: 'bridge', name: 'prerouting', hook: 'prerouting' } },
      { rule: { family: 'bridge', chain: 'prerouting', comment: 'plexus:spoof/b#2', handle: 5 } },
    ],
  })
  const v = parseListing(listing, bridge)
  t.notOk(v.hooked, 'missing chains: not hooked')
  t.same(v.rules.forward, ['plexus:cluster/a#1', 'handle 4'])
  t.same(v.rules.prerouting, [], "the bridge table's prerouting is the bridge hook")
  t.same(v.rules.bridge, ['plexus:spoof/b#2'])
  t.same(v.packets, { 'handle 4': 9 }, 'counters by tag')
})

t.test(
  'sections are ordered by `order`: a hairpin masquerade can come before the cluster RETURN',
  async (t) => {
    const hairpin: Section = {
      name: 'ports',
      order: 50,
      rules: [
        {
          id: 'hairpin',
          hook: 'postrouting',
          match: { src: '10.244.1.5', dst: '10.244.1.5' },
          action: { type: 'masquerade' },
        },
      ],
    }
    const ordered = rulesOf({ sections: [...spec.sections, hairpin] }, 'postrouting').map(
      (x) => `${x.section}/${x.rule.id}`,
    )
    t.same(ordered, ['ports/hairpin', 'cluster/nat-inside', 'cluster/nat-multicast', 'cluster/nat-leaving'])
    const after = rulesOf({ sections: [...spec.sections, { ...hairpin, order: undefined }] }, 'postrouting')
    t.equal(after.at(-1)?.rule.id, 'hairpin', 'default order: after the cluster section')
  },
)

t.test('views compare rule tags per hook, in order', async (t) => {
  const want = {
    hooked: true,
    rules: { forward: ['a', 'b'], input: [], prerouting: [], output: [], postrouting: ['c'], bridge: [] },
  }
  t.ok(sameView(want, structuredClone(want)), 'an equal view, another object')
  t.notOk(sameView(want, { ...want, hooked: false }), 'not hooked in')
  t.notOk(sameView(want, { ...want, rules: { ...want.rules, forward: ['b', 'a'] } }), 'other order')
  t.notOk(sameView(want, { ...want, rules: { ...want.rules, forward: ['a'] } }), 'a rule missing')
  t.notOk(sameView(want, { ...want, rules: { ...want.rules, input: ['c'], postrouting: [] } }), 'other hook')
  t.same(idsOf(expectedView(withPort)), WITH_PORT, 'the expected view of a spec lists its rules per hook')
})

t.test('checkSpec refuses what cannot be rendered safely', async (t) => {
  t.same(checkSpec(spec), [])
  const bad: FirewallSpec = {
    sections: [
      {
        name: 'Ports!',
        rules: [
          { id: 'a', hook: 'forward', match: {}, action: { type: 'dnat', to: '10.0.0.1' } },
          { id: 'a', hook: 'postrouting', match: {}, action: { type: 'accept' } },
          { id: 'b', hook: 'prerouting', match: { dport: 80 }, action: { type: 'dnat', to: '10.0.0.1' } },
        ],
      },
    ],
  }
  const p = checkSpec(bad)
  t.match(p.join('\n'), /section name "Ports!"/)
  t.match(p.join('\n'), /dnat is not allowed in forward/)
  t.match(p.join('\n'), /rule "Ports!\/a" appears twice/)
  t.match(p.join('\n'), /accept belongs in a filter hook/)
  t.match(p.join('\n'), /dport needs proto/)
})

t.test('checkSpec refuses values that could inject text into the rule scripts', async (t) => {
  const rule = (match: object, action: object = { type: 'accept' }) =>
    ({
      sections: [{ name: 'ports', rules: [{ id: 'r', hook: 'forward', match, action }] }],
    }) as unknown as FirewallSpec
  t.match(
    checkSpec(rule({ src: '10.0.0.0/8\n-A FORWARD -j DROP' })).join(),
    /src [\s\S]* is not an IPv4 address or CIDR/,
  )
  t.match(checkSpec(rule({ oif: 'eth0"; flush ruleset; "' })).join(), /oif .* is not an interface name/)
  t.match(checkSpec(rule({ proto: 'tcp', dport: 70000 })).join(), /dport 70000 is not a port/)
  t.match(checkSpec(rule({ proto: 'icmp' })).join(), /proto must be tcp or udp/)
  t.match(checkSpec(rule({ ctState: ['new', 'established; drop'] })).join(), /ctState must list some of/)
  t.match(checkSpec(rule({ ctDnat: 'yes' })).join(), /ctDnat must be true or false/)
  t.same(checkSpec(rule({ ctState: ['established', 'related'], ctDnat: true })), [])
  const dnat = (action: object) =>
    ({
      sections: [{ name: 'ports', rules: [{ id: 'r', hook: 'prerouting', match: {}, action }] }],
    }) as unknown as FirewallSpec
  t.match(
    checkSpec(dnat({ type: 'dnat', to: '10.0.0.1 ; drop' })).join(),
    /dnat target .* is not an IPv4 address/,
  )
  t.match(checkSpec(dnat({ type: 'dnat', to: '10.0.0.1', port: 0 })).join(), /dnat port 0 is not a port/)
  t.same(checkSpec(dnat({ type: 'dnat', to: '10.244.1.5', port: 80 })), [])
  t.same(checkSpec(rule({ src: '192.0.2.7', oif: 'plexus0', proto: 'udp', dport: 53 })), [])
})
