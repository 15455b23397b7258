// plexctl trace and doctor on the other backends: 2 hosts with host-gw and the
// nftables firewall (trace.test.ts does vxlan with iptables). A healthy path
// by name and to a published port (nft's DNAT), probed; then a route
// deleted, a foreign nftables rule and a foreign drop policy on the forward
// hook, IP forwarding off: each named by trace or doctor.
import t from 'tap'
import { eventually, upCluster } from '../../helpers/fixture.js'
import {
  apiDoctor,
  broken,
  brokenBy,
  DESTINATION_HOPS,
  doctor,
  finding,
  inHost,
  startPair,
  trace,
} from '../../helpers/trace.js'

t.setTimeout(400_000)

t.test('host-gw with nftables: trace and doctor', { timeout: 380_000 }, async (t) => {
  const c = upCluster(t, { hosts: 2, backend: 'host-gw', firewall: 'nftables', prefix: 'tg' })
  const ip2 = startPair(t, c)
  const ok = await eventually(
    () => {
      const tr = trace(c, 'h1', ['--probe', 'c1', 'web:8080'])
      return tr.diagnosis.ok && tr.probe?.outcome === 'answered' ? tr : undefined
    },
    30_000,
    500,
  )
  t.ok(ok, 'healthy by name, and the probe answered')
  t.same(
    ok?.hops.map((h) => `${h.host} ${h.component}`),
    [
      'h1 dns',
      'h1 container-route',
      'h1 veth',
      'h1 host-route',
      'h1 firewall',
      'h1 underlay',
      ...DESTINATION_HOPS,
    ],
    'the host-gw path, hop by hop',
  )
  t.match(ok?.hops.find((h) => h.component === 'host-route')?.object, /via 192\.0\.2\.\d+ dev eth0/, 'via h2')
  t.ok(
    ok?.probe?.seen.every((s) => s.seen),
    'the SYN seen on h1 and h2',
  )

  const pub = trace(c, 'h1', ['--probe', 'c1', 'h2:8088'])
  t.ok(pub.diagnosis.ok, `h2:8088: ${pub.diagnosis.line}`)
  t.match(
    pub.hops.find((h) => h.component === 'published-port'),
    { host: 'h2', action: 'nat', object: /→ .*:8080 \(plexus:ports\/tcp-8088-pre#/ },
    "nftables' DNAT read back",
  )
  t.equal(pub.probe?.outcome, 'answered', 'and a SYN to it answered')

  // the route to h2's subnet deleted: host-gw's route names the next hop, the lease says which
  const subnet2 = `${ip2.split('.').slice(0, 3).join('.')}.0/24`
  const routeHop = await brokenBy(c, 'host-route', () => inHost(c, 'h1', ['ip', 'route', 'del', subnet2]))
  t.match(routeHop, { host: 'h1', component: 'host-route', action: 'dropped' }, 'route deleted')
  t.match(routeHop?.cause, /is missing on h1: the kernel sends \S+ via 192\.0\.2\.1, not via 192\.0\.2\.12/)
  t.ok(await eventually(() => trace(c, 'h1', ['c1', 'c2:8080']).diagnosis.ok, 15_000, 250), 'repaired')

  // a foreign nftables rule on h2's forward hook drops c1's traffic to 8080
  const ip1 = /src (\S+)/.exec(c.execCtr('c1', ['ip', 'route', 'get', ip2]).stdout)?.[1] as string
  inHost(c, 'h2', ['nft', 'add', 'table', 'ip', 'hostfw'])
  t.teardown(() => inHost(c, 'h2', ['nft', 'delete', 'table', 'ip', 'hostfw']))
  inHost(c, 'h2', [
    'nft',
    'add chain ip hostfw guard { type filter hook forward priority 0; policy accept; }',
  ])
  inHost(c, 'h2', [
    'nft',
    'add',
    'rule',
    'ip',
    'hostfw',
    'guard',
    'ip',
    'saddr',
    ip1,
    'tcp',
    'dport',
    '8080',
    'drop',
  ])
  t.not(
    c.execCtr('c1', ['busybox', 'wget', '-q', '-T', '1', '-O', '-', `http://${ip2}:8080/`]).status,
    0,
    'really dropped',
  )
  const fw = broken(trace(c, 'h1', ['c1', 'c2:8080']))
  t.match(fw, {
    host: 'h2',
    component: 'firewall',
    action: 'dropped',
    object: /^nft rule ip hostfw guard handle \d+/,
  })
  t.ok(
    trace(c, 'h1', ['c1', 'c2:8081']).hops.every(
      (h) => h.component !== 'firewall' || h.action === 'forwarded',
    ),
    'not 8081',
  )

  // a foreign base chain dropping by policy: trace names it, doctor too
  inHost(c, 'h2', ['nft', 'flush', 'table', 'ip', 'hostfw'])
  inHost(c, 'h2', ['nft', 'delete chain ip hostfw guard'])
  inHost(c, 'h2', ['nft', 'add chain ip hostfw guard { type filter hook forward priority 0; policy drop; }'])
  t.match(broken(trace(c, 'h1', ['c1', 'c2:8080'])), {
    component: 'firewall',
    object: /ip hostfw guard \(hook forward, policy drop\)/,
  })
  t.equal(
    finding(doctor(c, 'h1', 'h2'), 'nft-foreign-chains')?.status,
    'fail',
    'doctor: the foreign drop policy',
  )
  inHost(c, 'h2', ['nft', 'delete', 'table', 'ip', 'hostfw'])

  // IP forwarding off on h2 (the datapath turns it on again within a pass: asked over the API
  // socket at once, and again if the repair came first): doctor fails it, trace stops at h2's route
  t.teardown(() => inHost(c, 'h2', ['sysctl', '-qw', 'net.ipv4.ip_forward=1']))
  let forwarding: string | undefined
  for (let i = 0; i < 5 && forwarding !== 'fail'; i++) {
    inHost(c, 'h2', ['sysctl', '-qw', 'net.ipv4.ip_forward=0'])
    forwarding = finding(await apiDoctor(c, 'h1', 'h2'), 'ip-forwarding')?.status
  }
  t.equal(forwarding, 'fail', 'doctor: forwarding off')
  const off = await brokenBy(c, 'host-route', () =>
    inHost(c, 'h2', ['sysctl', '-qw', 'net.ipv4.ip_forward=0']),
  )
  t.match(off, { host: 'h2', component: 'host-route', action: 'dropped' }, `forwarding off: ${off?.cause}`)
})
