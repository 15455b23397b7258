// Custom addressing per container (issue 17, item 4) with the real plugin and
// agent: a gateway other than the bridge, extra routes and a MAC are in the
// container's namespace and its result; invalid values are refused with every
// reason (code 7) and a route the kernel refuses half-way leaves nothing behind.
import t, { type Test } from 'tap'
import { run, upCluster } from '../../helpers/fixture.js'
import { allocations, containerNs, hostVeths, netconf, plugin, waitReady } from './plugin.js'

t.setTimeout(600_000)

const c = upCluster(t, { hosts: 1, prefix: 'ca' })
const H = 'h1'
const { subnet, gateway } = await waitReady(c, H)
const base = subnet.replace(/\.0\/\d+$/, '')
let seq = 0
const newId = () => `addr-${process.pid}-${seq++}`

interface Result {
  interfaces: { name: string; mac?: string }[]
  ips: { address: string; gateway?: string }[]
  routes: { dst: string; gw?: string }[]
  dns: { nameservers?: string[] }
}

const records = () => c.plexctlJson<{ containerId: string }[]>(H, ['endpoints'])

/** nothing of the attachment is left: no record, no allocation, no veth, no interface in the namespace */
function nothingLeft(t: Test, id: string, ns: string): void {
  t.notOk(
    records().some((r) => r.containerId === id),
    'no endpoint record',
  )
  t.notOk(
    allocations(c, H).some((a) => a.containerId === id),
    'no address allocated',
  )
  t.same(hostVeths(c, H), [], 'no host veth')
  t.not(run('ip', ['-n', ns, 'link', 'show', 'eth0']).status, 0, 'no eth0 in the container')
  t.notMatch(run('ip', ['-n', ns, '-4', 'addr']).stdout, base, 'no address of the subnet in the container')
}

t.test('gateway override, two extra routes and a MAC: in the namespace and in the result', async (t) => {
  const ns = `${c.name}-gw`
  const netns = containerNs(t, ns)
  const id = newId()
  const router = `${base}.200`
  const mac = '02:42:ac:11:00:99'
  const conf = netconf(c, H, {
    args: {
      cni: { mac },
      plexus: {
        gateway: router,
        routes: [{ dst: '192.168.50.0/24', gw: `${base}.201` }, { dst: '172.20.0.0/16' }],
      },
    },
  })
  const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(add.status, 0, add.raw)
  const r = add.out as unknown as Result
  t.equal(r.ips[0]?.gateway, router, "the result's gateway is the override")
  t.same(r.routes, [
    { dst: '0.0.0.0/0', gw: router },
    { dst: '192.168.50.0/24', gw: `${base}.201` },
    { dst: '172.20.0.0/16', gw: router },
  ])
  t.same(r.dns.nameservers, [gateway], 'DNS stays on the bridge')
  t.equal(r.interfaces[1]?.mac, mac)

  const routes = run('ip', ['-n', ns, '-4', 'route', 'show', 'dev', 'eth0']).stdout
  t.match(routes, `default via ${router}`)
  t.match(routes, `192.168.50.0/24 via ${base}.201`)
  t.match(routes, `172.20.0.0/16 via ${router}`)
  t.notMatch(routes, `default via ${gateway}`, 'no default via the bridge')
  t.match(run('ip', ['-n', ns, 'link', 'show', 'eth0']).stdout, `link/ether ${mac}`)

  const check = plugin(c, H, { command: 'CHECK', containerId: id, netns }, { ...conf, prevResult: add.out })
  t.equal(check.status, 0, `CHECK: ${check.raw}`)
  run('ip', ['-n', ns, 'route', 'del', '172.20.0.0/16'])
  const broken = plugin(c, H, { command: 'CHECK', containerId: id, netns }, { ...conf, prevResult: add.out })
  t.equal(broken.out?.code, 110, 'CHECK sees the missing route')
  t.match(broken.out?.msg, `no route to 172.20.0.0/16 via ${router}`)

  const again = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(again.status, 0, `repeated ADD rebuilds it: ${again.raw}`)
  t.match(run('ip', ['-n', ns, '-4', 'route']).stdout, `172.20.0.0/16 via ${router}`)
  const other = netconf(c, H, { args: { plexus: { gateway: `${base}.202` } } })
  const conflict = plugin(c, H, { command: 'ADD', containerId: id, netns }, other)
  t.equal(conflict.out?.code, 7, 'a repeated ADD asking another gateway is refused')
  t.match(conflict.out?.msg, `gateway ${router}, not ${base}.202`)

  const inspect = c.exec(H, ['plexctl', 'inspect', id]).stdout
  t.match(inspect, `${router} (asked for)`)
  t.match(inspect, `192.168.50.0/24 via ${base}.201`)
  t.match(inspect, mac)

  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
  nothingLeft(t, id, ns)
})

t.test('invalid addressing: every reason in one code 7, nothing made', async (t) => {
  const ns = `${c.name}-bad`
  const netns = containerNs(t, ns)
  const id = newId()
  // well-formed, so the plugin passes them; the agent knows the subnet
  const subnetBad = netconf(c, H, {
    args: {
      plexus: {
        gateway: `${base}.0`,
        routes: [{ dst: '10.50.0.0/16', gw: '10.99.0.1' }, { dst: subnet }],
      },
    },
  })
  const r = plugin(c, H, { command: 'ADD', containerId: id, netns }, subnetBad)
  t.equal(r.status, 1)
  t.equal(r.out?.code, 7, r.raw)
  t.match(r.out?.msg, `gateway ${base}.0 is the network address`)
  t.match(r.out?.msg, "routes[0].gw 10.99.0.1 is outside this host's subnet")
  t.match(r.out?.msg, `routes[1].dst ${subnet} is the container's own subnet`)
  nothingLeft(t, id, ns)

  // malformed: the plugin refuses before asking the agent
  const malformed = netconf(c, H, {
    args: {
      cni: { mac: '01:00:5e:00:00:01' },
      plexus: { gateway: 'router', routes: [{ dst: '10.0.0.1/8' }, { dst: '10.0.0.0/8', gw: 'x' }] },
    },
  })
  const m = plugin(c, H, { command: 'ADD', containerId: id, netns }, malformed)
  t.equal(m.out?.code, 7, m.raw)
  for (const f of ['args.cni.mac', 'args.plexus.gateway', 'routes[0].dst', 'routes[1].gw'])
    t.match(m.out?.msg, f, `names ${f}`)
  nothingLeft(t, id, ns)
})

t.test('a route the kernel refuses half-way rolls the ADD back', async (t) => {
  const ns = `${c.name}-kr`
  const netns = containerNs(t, ns)
  const id = newId()
  // the container's namespace already routes 192.168.77.0/24 (another plugin's, or its own)
  for (const args of [
    // a veth pair inside the namespace: the test kernel has no dummy driver
    ['link', 'add', 'own0', 'type', 'veth', 'peer', 'name', 'own1'],
    ['link', 'set', 'own0', 'up'],
    ['link', 'set', 'own1', 'up'],
    ['route', 'add', '192.168.77.0/24', 'dev', 'own0'],
  ])
    t.equal(run('ip', ['-n', ns, ...args]).status, 0, `ip ${args.join(' ')}`)
  const conf = netconf(c, H, {
    args: { plexus: { routes: [{ dst: '172.21.0.0/16' }, { dst: '192.168.77.0/24' }] } },
  })
  const r = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(r.status, 1)
  t.equal(r.out?.code, 7, r.raw)
  t.match(r.out?.msg, 'already has a route to 192.168.77.0/24')
  nothingLeft(t, id, ns)
  const left = run('ip', ['-n', ns, '-4', 'route']).stdout
  t.notMatch(left, '172.21.0.0/16', 'the route added before the refusal went with the interface')
  t.match(left, '192.168.77.0/24 dev own0', "the namespace's own route is untouched")

  // the same container without the clashing route attaches
  const ok = plugin(
    c,
    H,
    { command: 'ADD', containerId: id, netns },
    netconf(c, H, {
      args: { plexus: { routes: [{ dst: '172.21.0.0/16' }] } },
    }),
  )
  t.equal(ok.status, 0, ok.raw)
  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
  nothingLeft(t, id, ns)
})
