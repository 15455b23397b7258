// Both firewall backends against the real kernel, each in its own throwaway
// namespace: apply, read back, drift, replace, remove; nothing outside our
// chains/table is touched.
import t from 'tap'
import { allFirewalls, createFirewall, type FirewallBackend } from '../../../src/datapath/firewall/index.js'
import { IptablesFirewall } from '../../../src/datapath/firewall/iptables.js'
import {
  clusterSection,
  expectedView,
  type FirewallSpec,
  sameView,
} from '../../../src/datapath/firewall/model.js'
import { NftablesFirewall } from '../../../src/datapath/firewall/nftables.js'
import { parseNetworkConfig } from '../../../src/ipam/config.js'
import { nsExec, tempNetns } from './tempns.js'

const network = parseNetworkConfig({ Network: '10.244.0.0/16' })
const base: FirewallSpec = { sections: [clusterSection(network)] }
// what issue 7 adds: a section with DNAT, hairpin masquerade and a filter accept
const withPorts: FirewallSpec = {
  sections: [
    ...base.sections,
    {
      name: 'ports',
      rules: [
        {
          id: 'dnat-8080',
          hook: 'prerouting',
          match: { dstLocal: true, proto: 'tcp', dport: 8080 },
          action: { type: 'dnat', to: '10.244.1.5', port: 80 },
        },
        {
          id: 'local-8080',
          hook: 'output',
          match: { dstLocal: true, proto: 'tcp', dport: 8080 },
          action: { type: 'dnat', to: '10.244.1.5', port: 80 },
        },
        {
          id: 'hairpin',
          hook: 'postrouting',
          match: { src: '10.244.1.5', dst: '10.244.1.5', proto: 'tcp', dport: 80 },
          action: { type: 'masquerade' },
        },
        {
          id: 'snat-x',
          hook: 'postrouting',
          match: { src: '10.244.1.6', oif: 'eth0' },
          action: { type: 'snat', to: '192.0.2.11' },
        },
        { id: 'in-udp', hook: 'input', match: { proto: 'udp', dport: 8472 }, action: { type: 'accept' } },
      ],
    },
  ],
}

const kinds: [string, (ns: string) => FirewallBackend, (name: string) => string][] = [
  [
    'iptables (nf_tables)',
    (ns) => new IptablesFirewall('nf_tables', ns),
    (n) => nsExec(n, 'iptables-nft-save', []) + nsExec(n, 'nft', ['list', 'ruleset']),
  ],
  [
    'iptables (legacy)',
    (ns) => new IptablesFirewall('legacy', ns),
    (n) => nsExec(n, 'iptables-legacy-save', []),
  ],
  ['nftables', (ns) => new NftablesFirewall(ns), (n) => nsExec(n, 'nft', ['list', 'ruleset'])],
]

for (const [label, make, dump] of kinds) {
  t.test(label, async (t) => {
    const ns = tempNetns(t, 'fw')
    // someone else's rules, which must survive everything we do
    nsExec(ns.name, 'iptables-nft', ['-A', 'FORWARD', '-s', '198.51.100.0/24', '-j', 'DROP'])
    nsExec(ns.name, 'iptables-nft', ['-P', 'FORWARD', 'DROP'])
    const fw = make(ns.path)
    t.notOk((await fw.read()).hooked, 'nothing there yet')
    const unapplied = await fw.generation()
    await fw.apply(base)
    t.ok(sameView(await fw.read(), expectedView(base)), 'reads back as applied')
    // the generation lets a timer pass skip the listing: it must move with every commit, ours or not
    const applied = await fw.generation()
    if (fw instanceof IptablesFirewall && fw.variant === 'legacy') {
      t.equal(applied, undefined, 'legacy iptables cannot tell a generation: the reconciler always reads')
    } else {
      t.type(unapplied, 'number', 'a generation before the first commit')
      t.not(applied, unapplied, 'our apply moves the generation')
      await fw.read()
      t.equal(await fw.generation(), applied, 'reading moves nothing')
      nsExec(ns.name, 'nft', ['add', 'table', 'ip', 'someone-else'])
      t.not(await fw.generation(), applied, "another program's commit moves it")
      nsExec(ns.name, 'nft', ['delete', 'table', 'ip', 'someone-else'])
    }
    await fw.apply(base)
    t.ok(sameView(await fw.read(), expectedView(base)), 'apply is idempotent')
    t.match(dump(ns.name), /10\.244\.0\.0\/16/)

    // nftables numbers a table's objects in creation order: rules added to the
    // table in place get handles above every old one; a rewritten table
    // numbers them in chain order again, the port's DNAT before the cluster's NAT rules
    const handles = () =>
      [
        ...nsExec(ns.name, 'nft', ['-a', 'list', 'table', 'inet', 'plexus']).matchAll(
          /comment "([^"]+)" # handle (\d+)/g,
        ),
      ].map((m) => ({ tag: m[1] as string, handle: Number(m[2]) }))
    const before = fw instanceof NftablesFirewall ? Math.max(...handles().map((h) => h.handle)) : 0
    await fw.apply(withPorts)
    t.ok(sameView(await fw.read(), expectedView(withPorts)), 'a further section applies in the same batch')
    if (fw instanceof NftablesFirewall) {
      const dnat = handles().find((h) => h.tag.includes('/dnat-8080#'))
      t.ok(dnat && dnat.handle > before, 'nftables: the port was added to the table, not the table rewritten')
    }
    t.notOk(sameView(await fw.read(), expectedView(base)))

    // drift: delete one of our rules by hand
    if (fw instanceof IptablesFirewall)
      nsExec(ns.name, `iptables-${fw.variant === 'legacy' ? 'legacy' : 'nft'}`, [
        '-t',
        'nat',
        '-D',
        'PLEXUS-POSTROUTING',
        '1',
      ])
    else {
      const listing = nsExec(ns.name, 'nft', ['-a', 'list', 'chain', 'inet', 'plexus', 'postrouting'])
      const handle = /# handle (\d+)/.exec(
        listing
          .split('\n')
          .filter((l) => l.includes('comment'))
          .join('\n'),
      )?.[1]
      nsExec(ns.name, 'nft', ['delete', 'rule', 'inet', 'plexus', 'postrouting', 'handle', String(handle)])
    }
    t.notOk(sameView(await fw.read(), expectedView(withPorts)), 'a deleted rule shows as drift')
    await fw.apply(withPorts)
    t.ok(sameView(await fw.read(), expectedView(withPorts)), 'repaired')

    if (fw instanceof IptablesFirewall) {
      // apply() renders from the jumps it last saw; the read() of the next full pass refreshes them
      nsExec(ns.name, `iptables-${fw.variant === 'legacy' ? 'legacy' : 'nft'}`, [
        '-D',
        'FORWARD',
        '-m',
        'comment',
        '--comment',
        'plexus-hook',
        '-j',
        'PLEXUS-FORWARD',
      ])
      t.notOk((await fw.read()).hooked, 'a deleted jump shows as drift')
      await fw.apply(withPorts)
      t.ok(sameView(await fw.read(), expectedView(withPorts)), 'jump put back')

      // behind its back and unread: the edit (delete rule 1 of a now empty chain) fails, apply dumps and retries
      nsExec(ns.name, `iptables-${fw.variant === 'legacy' ? 'legacy' : 'nft'}`, [
        '-t',
        'nat',
        '-F',
        'PLEXUS-PREROUTING',
      ])
      await fw.apply(base)
      t.ok(
        sameView(await fw.read(), expectedView(base)),
        'an edit that no longer applies is redone from a dump',
      )
    }
    // a new instance (a restarted agent) knows nothing yet: it must not add a second jump
    await make(ns.path).apply(withPorts)
    t.ok(sameView(await fw.read(), expectedView(withPorts)), 'a fresh instance leaves one jump per chain')

    t.equal(await fw.remove(), true)
    t.equal(await fw.remove(), false, 'remove is idempotent')
    t.notOk((await fw.read()).hooked)
    const after = dump(ns.name)
    t.notMatch(after, /PLEXUS|plexus/, 'nothing of ours is left')
    t.match(
      nsExec(ns.name, 'iptables-nft-save', []),
      /-A FORWARD -s 198\.51\.100\.0\/24 -j DROP/,
      'foreign rule kept',
    )
    t.match(nsExec(ns.name, 'iptables-nft-save', []), /:FORWARD DROP/, 'foreign policy kept')
  })
}

t.test('auto picks the iptables flavour in use', async (t) => {
  const ns = tempNetns(t, 'fw')
  t.equal((await createFirewall('auto', ns.path)).variant, 'nf_tables', 'empty: nf_tables')
  nsExec(ns.name, 'iptables-legacy', ['-A', 'INPUT', '-s', '198.51.100.1', '-j', 'ACCEPT'])
  t.equal((await createFirewall('auto', ns.path)).variant, 'legacy', 'legacy rules present: legacy')
  t.equal((await createFirewall('nftables', ns.path)).name, 'nftables')
})

t.test('cleanup removes every flavour and leaves others alone', async (t) => {
  const ns = tempNetns(t, 'fw')
  await new IptablesFirewall('nf_tables', ns.path).apply(base)
  await new IptablesFirewall('legacy', ns.path).apply(base)
  await new NftablesFirewall(ns.path).apply(base)
  // someone else's rules in each flavour
  nsExec(ns.name, 'iptables-nft', ['-A', 'INPUT', '-s', '198.51.100.1', '-j', 'ACCEPT'])
  nsExec(ns.name, 'iptables-legacy', ['-A', 'INPUT', '-s', '198.51.100.2', '-j', 'ACCEPT'])
  nsExec(ns.name, 'nft', ['add', 'table', 'inet', 'other'])
  // every remove() must succeed: an error here is a cleanup that did not happen
  for (const fw of allFirewalls(ns.path)) await fw.remove()
  const nft = nsExec(ns.name, 'nft', ['list', 'ruleset'])
  const legacy = nsExec(ns.name, 'iptables-legacy-save', [])
  t.notMatch(nft, /plexus|PLEXUS/, 'nothing of ours in nftables or iptables-nft')
  t.notMatch(legacy, /plexus|PLEXUS/, 'nothing of ours in iptables-legacy')
  t.match(nft, /198\.51\.100\.1/, 'the iptables-nft rule someone else made stays')
  t.match(nft, /table inet other/, 'the nft table someone else made stays')
  t.match(legacy, /198\.51\.100\.2/, 'the legacy rule someone else made stays')
})
