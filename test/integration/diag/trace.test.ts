// plexctl trace on the test bed: 2 hosts (vxlan, iptables), a container on
// each attached by the real CNI plugin, one fixture for every case: a
// healthy path (by name, through Plexus DNS; to a published port, through
// its DNAT; with a real probe), then one hop broken at a time, each named by
// the trace. trace-hostgw.test.ts does host-gw with nftables.
import t from 'tap'
import { eventually, upCluster } from '../../helpers/fixture.js'
import {
  apiTrace,
  broken,
  brokenBy,
  DESTINATION_HOPS,
  doctor,
  finding,
  type Hop,
  inHost,
  startPair,
  type Trace,
  trace,
} from '../../helpers/trace.js'

// one fixture for every case; under load (2 shared cores) `up` alone takes up to a minute
t.setTimeout(600_000)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

t.test(
  'trace between two hosts: healthy, by name, to a published port, probed; then FDB, neighbour, route, MTU, foreign DROP, no healthy endpoint, remote agent killed',
  { timeout: 540_000 },
  async (t) => {
    const started = Date.now()
    // full passes every 5 s (the most the datapath allows): the window in which a hop deleted by hand stays broken
    const c = upCluster(t, {
      hosts: 2,
      prefix: 'tr',
      agentConfig: { datapath: { reconcileIntervalMs: 5000 } },
    })
    const ip2 = startPair(t, c)
    t.ok(ip2, 'c2 address')
    for (const h of ['h1', 'h2'])
      t.ok(
        await eventually(
          () =>
            c
              .plexctlJson<{ routes: { programmed: boolean }[] }>(h, ['routes'])
              .routes.some((x) => x.programmed),
          20_000,
        ),
        `${h} has its route to the other`,
      )
    t.equal(
      c.execCtr('c1', ['ping', '-c', '1', '-W', '2', ip2]).status,
      0,
      'c1 reaches c2 (the path is really up)',
    )

    const ok = trace(c, 'h1', ['c1', 'c2:8080'])
    t.ok(ok.diagnosis.ok, `healthy: ${ok.diagnosis.line}`)
    t.ok(
      ok.hops.every((h) => h.action === 'forwarded' || h.action === 'delivered'),
      'every hop forwarded or delivered',
    )
    t.same(
      ok.hops.map((h) => `${h.host} ${h.component}`),
      [
        'h1 container-route',
        'h1 veth',
        'h1 host-route',
        'h1 firewall',
        'h1 vxlan-neighbour',
        'h1 vxlan-fdb',
        'h1 underlay',
        ...DESTINATION_HOPS,
      ],
      'the vxlan path, hop by hop',
    )
    t.equal(ok.hops.at(-1)?.action, 'delivered', 'delivered to the listening socket')
    t.match(ok.hops.at(-1)?.object, /:8080/)
    t.match(
      ok.hops.find((h) => h.component === 'vxlan-fdb')?.record,
      /^leases\//,
      'the FDB entry names the lease that made it',
    )
    t.match(
      ok.hops.find((h) => h.component === 'veth')?.record,
      /^endpoints\//,
      'the veth names its endpoint record',
    )

    const noPort = trace(c, 'h1', ['c1', 'c2:9999'])
    t.equal(broken(noPort)?.component, 'socket', 'nothing listens on 9999: the socket hop says so')

    // by name: the service, resolved through Plexus DNS from c1's namespace, is the first hop
    const byName = trace(c, 'h1', ['c1', 'web:8080'])
    t.ok(byName.diagnosis.ok, `web:8080: ${byName.diagnosis.line}`)
    t.match(byName.hops[0], { host: 'h1', component: 'dns', action: 'forwarded', record: 'services/web' })
    t.match(
      byName.hops[0]?.object,
      new RegExp(`^A web\\.svc\\.plexus\\.internal → ${ip2.replace(/\./g, '\\.')} `),
    )
    t.same(
      byName.hops.slice(1).map((h) => h.component),
      ok.hops.map((h) => h.component),
      'then the same path',
    )

    // the published port: masqueraded out of h1, DNAT'd on h2, to c2's socket; and a real SYN
    const pub = trace(c, 'h1', ['--probe', 'c1', 'h2:8088'])
    t.ok(pub.diagnosis.ok, `h2:8088: ${pub.diagnosis.line}`)
    t.same(
      pub.hops.map((h) => `${h.host} ${h.component} ${h.action}`),
      [
        'h1 container-route forwarded',
        'h1 veth forwarded',
        'h1 host-route forwarded',
        'h1 firewall forwarded',
        'h1 masquerade nat',
        'h2 published-port nat',
        'h2 host-route forwarded',
        'h2 firewall forwarded',
        'h2 veth forwarded',
        'h2 container forwarded',
        'h2 socket delivered',
      ],
      'the published port, hop by hop',
    )
    t.match(
      pub.hops.find((h) => h.component === 'published-port')?.object,
      new RegExp(`^DNAT \\S+:8088/tcp → ${ip2.replace(/\./g, '\\.')}:8080 \\(plexus:ports/tcp-8088-pre#`),
      'the DNAT rule as the kernel has it',
    )
    t.equal(pub.probe?.outcome, 'answered', `probe: ${pub.probe?.detail}`)
    t.same(
      pub.probe?.seen.map((s) => [s.host, s.seen]),
      [
        ['h1', true],
        ['h2', true],
      ],
      'the SYN seen in conntrack on both hosts',
    )
    t.match(
      pub.probe?.seen[1]?.object,
      new RegExp(`answered by ${ip2.replace(/\./g, '\\.')}:8080 \\(NAT\\), reply seen`),
    )

    // a probe along the overlay: the SYN-ACK came back through both hosts
    const probed = trace(c, 'h1', ['--probe', 'c1', 'c2:8080'])
    t.equal(probed.probe?.outcome, 'answered')
    t.ok((probed.probe?.rttMs ?? -1) >= 0, `round trip ${probed.probe?.rttMs} ms`)
    t.ok(
      probed.probe?.seen.every((s) => s.seen && s.object.endsWith('reply seen')),
      'seen with its reply on h1 and h2',
    )
    const icmp = trace(c, 'h1', ['--probe', 'c1', 'c2/icmp'])
    t.equal(icmp.probe?.outcome, 'answered', `ping: ${icmp.probe?.detail}`)

    // a drop no hop reads (mangle): every hop forwards, the probe tells the truth
    const mangle = ['-t', 'mangle', '-I', 'FORWARD', '-p', 'tcp', '--dport', '8080', '-j', 'DROP']
    inHost(c, 'h2', ['iptables', ...mangle])
    t.teardown(() => inHost(c, 'h2', ['iptables', ...mangle.map((a) => (a === '-I' ? '-D' : a))]))
    const lost = trace(c, 'h1', ['--probe', 'c1', 'c2:8080'])
    inHost(c, 'h2', ['iptables', ...mangle.map((a) => (a === '-I' ? '-D' : a))])
    t.equal(lost.probe?.outcome, 'no-answer', 'the SYN is lost')
    t.notOk(lost.diagnosis.ok, 'so the path is not ok')
    t.match(lost.diagnosis.line, /every hop forwards, yet the probe got no answer .* last seen on h1/)

    // a service whose only member fails its check: DNS answers no address, the catalog says why
    t.equal(
      c.exec('h1', [
        'plexctl',
        'service',
        'register',
        'api',
        '--check',
        'tcp:7777',
        '--interval',
        '1s',
        '--timeout',
        '500ms',
        '--failures',
        '1',
      ]).status,
      0,
      'api defined with a check nothing passes',
    )
    t.equal(c.run('h2', 'c3', ['sleep', '600'], ['--service', 'api']).status, 0, 'c3 joins api')
    const sick = await eventually(
      () => {
        const tr = trace(c, 'h1', ['c1', 'api:7777'])
        return broken(tr)?.component === 'dns' ? tr : undefined
      },
      20_000,
      500,
    )
    t.match(broken(sick as Trace), {
      host: 'h1',
      component: 'dns',
      action: 'dropped',
      record: 'services/api',
    })
    t.match(broken(sick as Trace)?.cause, /service api has no healthy endpoint: 1 member\(s\) \(c3 on h2\)/)

    // latency: the agent's own time for the whole trace (both hosts asked), median of 20
    const times: number[] = []
    for (let i = 0; i < 20; i++)
      times.push((await apiTrace(c, 'h1', { src: 'c1', dst: 'c2', port: 8080 })).durationMs)
    const p50 = median(times)
    t.comment(`2-host trace: median ${p50} ms of 20 (min ${Math.min(...times)}, max ${Math.max(...times)})`)
    t.ok(p50 <= 1000, `median ${p50} ms <= 1 s`)

    const doc = doctor(c, 'h1', 'h2')
    t.equal(doc.host, 'h2', 'doctor --host asks the other agent over the inspect protocol')
    t.equal(finding(doc, 'lease')?.status, 'ok')
    const clock = finding(doc, 'clock-offset')
    t.equal(
      clock?.status,
      'ok',
      'h2 asked h1 for its clock over the inspect protocol: one machine, one clock',
    )
    t.match(clock?.evidence, /the other host within 1000 ms of this one: h1 [+-]\d+ ms/)

    // FDB entry deleted: the broken hop is the FDB
    const h2ip = /dst (\S+)/.exec(
      c.exec('h1', ['bridge', 'fdb', 'show', 'dev', 'plexus.1']).stdout,
    )?.[1] as string
    t.ok(h2ip, 'h1 has an FDB entry for h2')
    const fdbHop = await brokenBy(c, 'vxlan-fdb', () => {
      const line = inHost(c, 'h1', ['bridge', 'fdb', 'show', 'dev', 'plexus.1'])
        .stdout.split('\n')
        .find((l) => l.includes(`dst ${h2ip}`))
      const mac = line?.split(' ')[0] as string
      inHost(c, 'h1', ['bridge', 'fdb', 'del', mac, 'dev', 'plexus.1', 'dst', h2ip])
    })
    t.equal(fdbHop?.component, 'vxlan-fdb', 'FDB deleted: the broken hop is the FDB')
    t.equal(fdbHop?.host, 'h1')
    t.match(fdbHop?.cause, /FDB entry .* missing on h1/)
    t.ok(
      await eventually(() => trace(c, 'h1', ['c1', 'c2:8080']).diagnosis.ok, 10_000, 250),
      'repaired by the datapath: ok again',
    )

    // the neighbour entry of h2's VTEP deleted
    const vtep = ok.hops.find((h) => h.component === 'vxlan-neighbour')?.object.split(' ')[1] as string
    const neighHop = await brokenBy(c, 'vxlan-neighbour', () =>
      inHost(c, 'h1', ['ip', 'neigh', 'del', vtep, 'dev', 'plexus.1']),
    )
    t.match(neighHop, { host: 'h1', component: 'vxlan-neighbour', action: 'dropped' }, 'neighbour deleted')
    t.match(neighHop?.cause, new RegExp(`neighbour entry for ${vtep.replace(/\./g, '\\.')} .* missing on h1`))

    // the route to h2's subnet deleted: the kernel falls back to the default route
    const subnet2 = `${ip2.split('.').slice(0, 3).join('.')}.0/24`
    const routeHop = await brokenBy(c, 'host-route', () => inHost(c, 'h1', ['ip', 'route', 'del', subnet2]))
    t.match(routeHop, { host: 'h1', component: 'host-route', action: 'dropped' }, 'route deleted')
    t.match(
      routeHop?.cause,
      new RegExp(`the route to ${subnet2.replace(/\./g, '\\.')} \\(leases/.*\\) is missing on h1`),
    )
    t.match(routeHop?.record, /^leases\//, 'naming the lease that should have made it')
    t.ok(
      await eventually(() => trace(c, 'h1', ['c1', 'c2:8080']).diagnosis.ok, 10_000, 250),
      'the route repaired: ok again',
    )

    // the underlay MTU lowered on h1: VXLAN's full-size packets no longer fit
    inHost(c, 'h1', ['ip', 'link', 'set', 'eth0', 'mtu', '1400'])
    t.teardown(() => inHost(c, 'h1', ['ip', 'link', 'set', 'eth0', 'mtu', '1500']))
    const mtuHop = broken(trace(c, 'h1', ['c1', 'c2:8080']))
    inHost(c, 'h1', ['ip', 'link', 'set', 'eth0', 'mtu', '1500'])
    t.match(mtuHop, { host: 'h1', component: 'underlay', action: 'dropped' }, 'underlay MTU lowered')
    t.match(mtuHop?.cause, /underlay MTU 1400 < plexus\.1 MTU \d+ \+ 50/)

    // a foreign DROP ahead of Plexus' chain on the destination host
    const ip1 = /src (\S+)/.exec(c.execCtr('c1', ['ip', 'route', 'get', ip2]).stdout)?.[1] as string
    const rule = ['FORWARD', '-s', ip1, '-j', 'DROP']
    let fwHop: Hop | undefined
    for (let i = 0; i < 3 && fwHop?.component !== 'firewall'; i++) {
      inHost(c, 'h2', ['iptables', '-I', ...rule])
      t.teardown(() => {
        inHost(c, 'h2', ['iptables', '-D', ...rule])
      })
      fwHop = broken(await apiTrace(c, 'h1', { src: 'c1', dst: 'c2', port: 8080 }))
      t.not(
        c.execCtr('c1', ['ping', '-c', '1', '-W', '1', ip2]).status,
        0,
        'and the packet really is dropped',
      )
    }
    t.equal(fwHop?.component, 'firewall', 'foreign DROP: the broken hop is the firewall')
    t.equal(fwHop?.host, 'h2')
    t.match(fwHop?.object, new RegExp(`-s ${ip1.replace(/\./g, '\\.')}/32 -j DROP`))
    while (inHost(c, 'h2', ['iptables', '-D', ...rule]).status === 0) {}

    // the remote agent killed: shown as not answering, within 2 s
    c.stop('h2', 'KILL')
    const t0 = Date.now()
    const dead = trace(c, 'h1', ['c1', 'c2:8080'])
    const wall = Date.now() - t0
    t.equal(broken(dead)?.component, 'agent', 'h2 shown as not answering')
    t.equal(broken(dead)?.action, 'no-answer')
    t.equal(broken(dead)?.host, 'h2')
    t.ok(dead.durationMs <= 2000, `answered in ${dead.durationMs} ms (API wall ${wall} ms)`)
    t.comment(`trace fixture test: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  },
)
