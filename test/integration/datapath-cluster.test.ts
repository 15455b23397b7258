// The datapath inside the real test bed: 3 hosts running plexusd, one
// container each attached through the CNI plugin, for both backends.
import { join } from 'node:path'
import t from 'tap'
import { eventually, QUICK_LEASES, REPO, upCluster } from '../helpers/fixture.js'
import { tcpTransfer } from './datapath/topology.js'

// a multi-host fixture run outlasts tap's 300 s file default on a loaded 2-core machine
t.setTimeout(1_200_000)

interface Routes {
  state: string
  firewall: { backend: string }
  subnet?: string
  mtu?: number
  routes: { dst: string; programmed: boolean }[]
  repairs: Record<string, number>
}

const cases = [
  { backend: 'vxlan', firewall: 'iptables' },
  { backend: 'host-gw', firewall: 'nftables' },
] as const

for (const { backend, firewall } of cases) {
  t.test(`3 hosts over ${backend}, firewall ${firewall}`, async (t) => {
    const c = upCluster(t, {
      hosts: 3,
      backend,
      firewall,
      prefix: backend === 'vxlan' ? 'dv' : 'dh',
      agentConfig: QUICK_LEASES,
    })
    const hosts = ['h1', 'h2', 'h3']
    const ips: Record<string, string> = {}
    for (const h of hosts) {
      const r = c.run(h, `c${h.slice(1)}`, ['sleep', '600'])
      t.equal(r.status, 0, `container on ${h}: ${r.stderr}`)
      ips[h] = /: (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1] ?? ''
    }
    const routes = (h: string) => c.plexctlJson<Routes>(h, ['routes'])
    for (const h of hosts) {
      const ok = await eventually(() => {
        const r = routes(h)
        return r.routes.filter((x) => x.programmed).length === 2 ? r : undefined
      }, 20_000)
      t.ok(ok, `${h} programmed routes to both others`)
    }
    t.equal(routes('h1').firewall.backend, firewall, `agents use ${firewall}`)
    const mtu = routes('h1').mtu as number
    t.equal(mtu, backend === 'vxlan' ? 1450 : 1500)

    for (const a of hosts) {
      for (const b of hosts) {
        if (a === b) continue
        const p = c.execCtr(`c${a.slice(1)}`, ['ping', '-c', '1', '-W', '2', ips[b] as string])
        t.equal(p.status, 0, `ICMP c${a.slice(1)} → c${b.slice(1)}`)
      }
    }
    const ns = (h: string) => `${c.name}-c${h.slice(1)}`
    for (const [a, b] of [
      ['h1', 'h2'],
      ['h2', 'h3'],
      ['h3', 'h1'],
    ] as const) {
      t.equal(
        await tcpTransfer(ns(a), ns(b), ips[b] as string, 65_536),
        65_536,
        `TCP c${a.slice(1)} → c${b.slice(1)}`,
      )
    }
    const mb10 = 10 * 1024 * 1024
    t.equal(await tcpTransfer(ns('h1'), ns('h3'), ips.h3 as string, mb10), mb10, '10 MB over TCP')
    const df = c.execCtr('c2', [
      'ping',
      '-c',
      '1',
      '-W',
      '2',
      '-M',
      'do',
      '-s',
      String(mtu - 28),
      ips.h1 as string,
    ])
    t.equal(df.status, 0, `ICMP of the full overlay MTU (${mtu}) with DF set crosses`)

    // drift: a route deleted by hand is back within 5 s, and counted
    const h2subnet = routes('h2').subnet as string
    t.equal(c.exec('h1', ['ip', 'route', 'del', h2subnet]).status, 0)
    const back = await eventually(
      () => c.exec('h1', ['ip', 'route', 'show', h2subnet]).stdout.includes(h2subnet),
      5000,
      50,
    )
    t.ok(back, 'deleted route is back within 5 s')
    t.ok((routes('h1').repairs.route ?? 0) >= 1, 'repair counted')
    // explain: the repaired route comes from h2's lease and the network config
    const h2peer = c
      .plexctlJson<{ remotes: { peerId: string; subnet: string }[] }>('h1', ['routes'])
      .remotes.find((r) => r.subnet === h2subnet)?.peerId
    const why = c.plexctlJson<{ explanations: { by: string; kind: string; records: { key: string }[] }[] }>(
      'h1',
      ['explain', h2subnet],
    )
    t.same(
      why.explanations.filter((e) => e.kind === 'route').map((e) => [e.by, e.records.map((r) => r.key)]),
      [['datapath', ['config/network', `leases/${h2peer}`]]],
      "plexctl explain names the route's records",
    )

    // cleanup leaves nothing of ours on the host
    t.equal(c.stop('h1').status, 0)
    const clean = c.exec('h1', [process.execPath, join(REPO, 'dist/src/agent/main.js'), '--cleanup'])
    t.equal(clean.status, 0, `plexusd --cleanup: ${clean.stdout}${clean.stderr}`)
    t.match(clean.stdout, /removed links: .*plexus0/)
    t.notMatch(c.exec('h1', ['ip', '-d', 'link']).stdout, /plexus/, 'no plexus device left')
    t.notMatch(c.exec('h1', ['ip', 'route']).stdout, /proto 77/, 'no plexus route left')
    const rules = c.exec('h1', ['iptables-save']).stdout + c.exec('h1', ['nft', 'list', 'ruleset']).stdout
    t.notMatch(rules, /PLEXUS|table inet plexus/, 'no plexus rule left')
  })
}
