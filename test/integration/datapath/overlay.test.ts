// Three hosts in throwaway namespaces, each with its own Reconciler, for both
// backends (and both firewall kinds): endpoints reach each other (ICMP, TCP,
// 10 MB, full-MTU ICMP with DF), drift is repaired within 5 s, an expired
// lease's entries vanish, refused remotes are reported, cleanup removes all.
import t from 'tap'
import { cleanup } from '../../../src/datapath/cleanup.js'
import { allFirewalls } from '../../../src/datapath/firewall/index.js'
import { sleep } from '../../../src/lib/proc.js'
import { nsExec } from './tempns.js'
import { leaseRecord, pingOk, tcpSession, tcpTransfer, topology, waitFor } from './topology.js'

const REFUSED = 'plexus_datapath_remote_subnets_refused_total'

const cases = [
  { backend: 'vxlan', firewall: 'iptables' },
  { backend: 'host-gw', firewall: 'nftables' },
] as const

for (const c of cases) {
  t.test(`${c.backend} with ${c.firewall}`, async (t) => {
    const topo = await topology(t, {
      hosts: 3,
      network: { Network: '10.244.0.0/16', Backend: { Type: c.backend } },
      firewall: c.firewall,
    })
    const [h1, h2, h3] = topo.hosts as [
      (typeof topo.hosts)[0],
      (typeof topo.hosts)[0],
      (typeof topo.hosts)[0],
    ]
    const mtu = c.backend === 'vxlan' ? 1450 : 1500

    for (const h of topo.hosts) {
      t.equal(h.reconciler.status().state, 'ok', `h${h.i} converged`)
      t.equal((await h.nl.linkByName('plexus0')).mtu, mtu, `h${h.i} bridge MTU ${mtu}`)
    }
    if (c.backend === 'vxlan') {
      t.match(
        nsExec(h1.ns.name, 'ip', ['-d', 'link', 'show', 'plexus.1']),
        /mtu 1450 .*\n.*\n.*vxlan id 1 local 192\.0\.2\.11 dev eth0 .*dstport 8472 nolearning/,
      )
      t.match(
        nsExec(h1.ns.name, 'ip', ['route', 'show', '10.244.2.0/24']),
        /10\.244\.2\.0\/24 via 10\.244\.2\.0 dev plexus\.1 proto 77 onlink/,
      )
      t.match(
        nsExec(h1.ns.name, 'ip', ['neigh', 'show', 'dev', 'plexus.1']),
        /10\.244\.2\.0 lladdr [0-9a-f:]{17} PERMANENT/,
      )
      t.match(
        nsExec(h1.ns.name, 'bridge', ['fdb', 'show', 'dev', 'plexus.1']),
        /dst 192\.0\.2\.12 self permanent/,
      )
    } else {
      t.match(
        nsExec(h1.ns.name, 'ip', ['route', 'show', '10.244.2.0/24']),
        /10\.244\.2\.0\/24 via 192\.0\.2\.12 dev eth0 proto 77/,
      )
    }

    for (const a of topo.hosts) {
      for (const b of topo.hosts) {
        if (a === b) continue
        t.ok(pingOk(a.ep.name, b.ep.ip), `ICMP c${a.i} → c${b.i}`)
      }
    }
    for (const [a, b] of [
      [h1, h2],
      [h2, h3],
      [h3, h1],
    ] as const) {
      t.equal(await tcpTransfer(a.ep.name, b.ep.name, b.ep.ip, 100_000), 100_000, `TCP c${a.i} → c${b.i}`)
    }
    t.equal(
      await tcpTransfer(h1.ep.name, h3.ep.name, h3.ep.ip, 10 * 1024 * 1024),
      10 * 1024 * 1024,
      '10 MB over TCP',
    )
    t.equal(
      (await tcpSession(h1.ep.name, h2.ep.name, h2.ep.ip, 10)).from,
      h1.ep.ip,
      'no masquerade inside the cluster network',
    )
    t.equal(
      (await tcpSession(h1.ep.name, h2.ns.name, h2.address, 10)).from,
      h1.address,
      'masquerade when leaving it',
    )
    t.ok(pingOk(h2.ep.name, h1.ep.ip, mtu - 28), `ICMP of the full overlay MTU (${mtu}) with DF crosses`)
    t.notOk(pingOk(h2.ep.name, h1.ep.ip, mtu - 27), 'one byte more is refused at the sender, not black-holed')

    // drift: a route, (vxlan) an FDB entry and a firewall rule deleted by hand come back within 5 s
    nsExec(h1.ns.name, 'ip', ['route', 'del', '10.244.2.0/24'])
    t.ok(
      (await waitFor(() => /10\.244\.2\.0\/24/.test(nsExec(h1.ns.name, 'ip', ['route'])), 5000)) >= 0,
      'deleted route is back within 5 s',
    )
    if (c.backend === 'vxlan') {
      const mac = /([0-9a-f:]{17}) dst 192\.0\.2\.12/.exec(
        nsExec(h1.ns.name, 'bridge', ['fdb', 'show', 'dev', 'plexus.1']),
      )?.[1] as string
      nsExec(h1.ns.name, 'bridge', ['fdb', 'del', mac, 'dev', 'plexus.1', 'dst', '192.0.2.12'])
      t.ok(
        (await waitFor(
          () => nsExec(h1.ns.name, 'bridge', ['fdb', 'show', 'dev', 'plexus.1']).includes(mac),
          5000,
        )) >= 0,
        'deleted FDB entry is back within 5 s',
      )
      const neigh = () => nsExec(h1.ns.name, 'ip', ['neigh', 'show', '10.244.2.0', 'dev', 'plexus.1'])
      const lladdr = /lladdr ([0-9a-f:]{17}) PERMANENT/.exec(neigh())?.[1] as string
      nsExec(h1.ns.name, 'ip', ['neigh', 'del', '10.244.2.0', 'dev', 'plexus.1'])
      t.notMatch(neigh(), /lladdr/, 'neighbour entry deleted by hand')
      t.ok(
        (await waitFor(() => neigh().includes(`lladdr ${lladdr} PERMANENT`), 5000)) >= 0,
        'deleted neighbour entry is back within 5 s, with its address',
      )
    }
    if (c.firewall === 'iptables') nsExec(h1.ns.name, 'iptables', ['-D', 'PLEXUS-FORWARD', '1'])
    else nsExec(h1.ns.name, 'nft', ['flush', 'chain', 'inet', 'plexus', 'forward'])
    const fwBack = () =>
      (c.firewall === 'iptables'
        ? nsExec(h1.ns.name, 'iptables-save', ['-t', 'filter'])
        : nsExec(h1.ns.name, 'nft', ['list', 'chain', 'inet', 'plexus', 'forward'])
      ).includes('fwd-from-cluster')
    t.ok((await waitFor(fwBack, 5000)) >= 0, 'deleted firewall rule is back within 5 s')
    // that repair came from a timer pass; the ones with nothing committed in between trust the rules unlisted
    const skipped = () => h1.metrics.value('plexus_datapath_firewall_reads_skipped_total')
    const skippedBefore = await skipped()
    const by = Date.now() + 5000
    while ((await skipped()) === skippedBefore && Date.now() < by) await sleep(100)
    t.ok(
      (await skipped()) > skippedBefore,
      `timer passes skip the listing while the nf_tables generation stands (${skippedBefore} → ${await skipped()})`,
    )
    await h1.reconciler.reconcile()
    const repairs = h1.reconciler.status().repairs
    t.ok(
      (repairs.route ?? 0) >= 1 &&
        (repairs.firewall ?? 0) >= 1 &&
        (c.backend !== 'vxlan' || ((repairs.fdb ?? 0) >= 1 && (repairs.neigh ?? 0) >= 1)),
      `repairs counted: ${JSON.stringify(repairs)}`,
    )
    t.ok((await h1.metrics.value('plexus_datapath_drift_repaired_total', { kind: 'route' })) >= 1)

    // a hostile lease: a subnet outside the network is ignored, never programmed
    topo.records.set(
      'evil',
      leaseRecord(
        'evil',
        {
          subnet: '10.99.0.0/24',
          publicIp: '192.0.2.99',
          hostname: 'evil',
          backend: { type: c.backend },
          claimedAt: 1,
        },
        60_000,
      ),
    )
    await h1.reconciler.reconcile()
    t.notMatch(nsExec(h1.ns.name, 'ip', ['route']), /10\.99\./, 'lease outside the network not programmed')
    topo.records.delete('evil')

    // h3's lease expires: its entries vanish from the others
    const r3 = topo.records.get(h3.peerId)
    if (r3)
      topo.records.set(h3.peerId, {
        ...r3,
        version: { wall: Date.now() - (r3.ttlMs ?? 0) - 1000, logical: 0 },
      })
    await h1.reconciler.reconcile()
    const routes = nsExec(h1.ns.name, 'ip', ['route'])
    t.notMatch(routes, /10\.244\.3\.0/, 'expired lease: route gone')
    if (c.backend === 'vxlan') {
      t.notMatch(
        nsExec(h1.ns.name, 'bridge', ['fdb', 'show', 'dev', 'plexus.1']),
        /192\.0\.2\.13/,
        'expired lease: FDB entry gone',
      )
      t.notMatch(
        nsExec(h1.ns.name, 'ip', ['neigh', 'show', 'dev', 'plexus.1']),
        /10\.244\.3\.0/,
        'expired lease: neighbour gone',
      )
    }
    t.ok(pingOk(h1.ep.name, h2.ep.ip), 'the others still reach each other')

    // cleanup removes every device, route and rule we made
    await h1.reconciler.stop()
    const report = await cleanup(h1.nl, allFirewalls(h1.ns.path))
    t.same(report.errors, [])
    t.ok(report.links.includes('plexus0'))
    t.notMatch(nsExec(h1.ns.name, 'ip', ['-d', 'link']), /plexus/, 'no plexus links left')
    t.notMatch(nsExec(h1.ns.name, 'ip', ['route']), /proto 77/, 'no plexus routes left')
    t.notMatch(
      nsExec(h1.ns.name, 'iptables-save', []) + nsExec(h1.ns.name, 'nft', ['list', 'ruleset']),
      /plexus|PLEXUS/i,
      'no plexus rules left',
    )
  })
}

t.test('host-gw refuses a remote that is not on the same L2 segment', async (t) => {
  const topo = await topology(t, {
    hosts: 2,
    network: { Backend: { Type: 'host-gw' } },
    firewall: 'nftables',
  })
  const h1 = topo.hosts[0] as (typeof topo.hosts)[0]
  topo.records.set(
    'far',
    leaseRecord(
      'far',
      {
        subnet: '10.244.9.0/24',
        publicIp: '198.51.100.7',
        hostname: 'far',
        backend: { type: 'host-gw' },
        claimedAt: 5,
      },
      60_000,
    ),
  )
  await h1.reconciler.reconcile()
  const st = h1.reconciler.status()
  const far = st.remotes.find((r) => r.host === 'far')
  t.equal(far?.mode, 'refused')
  t.match(far?.reason, /not on this host's L2 segment/)
  t.equal(st.state, 'degraded')
  t.equal(await h1.metrics.value(REFUSED), 1, 'counted once')
  await h1.reconciler.reconcile()
  t.equal(await h1.metrics.value(REFUSED), 1, 'not counted again while unchanged')
  t.notMatch(nsExec(h1.ns.name, 'ip', ['route']), /10\.244\.9\./)
})

t.test('vxlan DirectRouting: hosts on one segment get direct routes, traffic crosses', async (t) => {
  const topo = await topology(t, {
    hosts: 2,
    network: { Backend: { Type: 'vxlan', DirectRouting: true } },
    firewall: 'iptables',
  })
  const [h1, h2] = topo.hosts as [(typeof topo.hosts)[0], (typeof topo.hosts)[0]]
  t.match(nsExec(h1.ns.name, 'ip', ['route', 'show', h2.subnet]), /via 192\.0\.2\.12 dev eth0 proto 77/)
  t.same(
    h1.reconciler.status().remotes.map((r) => r.mode),
    ['direct'],
  )
  t.notMatch(nsExec(h1.ns.name, 'bridge', ['fdb', 'show', 'dev', 'plexus.1']), /dst/, 'no FDB entry needed')
  t.ok(pingOk(h1.ep.name, h2.ep.ip), 'ICMP crosses')
  t.ok(pingOk(h2.ep.name, h1.ep.ip, 1450 - 28), 'full overlay MTU with DF crosses')
})
