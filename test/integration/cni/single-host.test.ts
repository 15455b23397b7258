// The real plugin binary against a real plexusd in a one-host fixture cluster:
// lifecycle, idempotency, every bad input, GC, STATUS, and no leaks.
import t from 'tap'
import { run, upCluster } from '../../helpers/fixture.js'
import { allocations, containerNs, hostNs, hostVeths, netconf, plugin, waitReady } from './plugin.js'

// fixture work that outlasts tap's 300 s default on a loaded 2-core machine (ports.test did in a helper's run)
t.setTimeout(900_000)

const c = upCluster(t, { hosts: 1, prefix: 'cs' })
const H = 'h1'
const { subnet, gateway } = await waitReady(c, H)
const prefix = subnet.split('/')[1]
let seq = 0
const newId = () => `ctr-${process.pid}-${seq++}`

interface Result {
  cniVersion: string
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[]
  ips: { address: string; gateway?: string; interface?: number; version?: string }[]
  routes: { dst: string; gw?: string }[]
  dns: { nameservers?: string[]; search?: string[]; options?: string[] }
}

function records(): { containerId: string; ifname: string }[] {
  return c.plexctlJson<{ containerId: string; ifname: string }[]>(H, ['endpoints'])
}

t.test('ADD gives a complete result in every CNI version, DEL removes everything', async (t) => {
  for (const v of ['0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const id = newId()
    const netns = containerNs(t, `${c.name}-v${v.replace(/\./g, '')}`)
    const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, netconf(c, H, { cniVersion: v }))
    t.equal(add.status, 0, `${v} ADD: ${add.raw}`)
    const r = add.out as unknown as Result
    t.equal(r.cniVersion, v)
    t.equal(r.interfaces.length, 2)
    t.equal(r.interfaces[1]?.name, 'eth0')
    t.equal(r.interfaces[1]?.sandbox, netns)
    t.equal(r.interfaces[1]?.mtu, v === '1.1.0' ? 1450 : undefined, 'mtu only in 1.1.0')
    t.match(r.ips[0], { gateway, interface: 1 })
    t.match(r.ips[0]?.address, new RegExp(`/${prefix}$`))
    t.equal(r.ips[0]?.version, v.startsWith('0.') ? '4' : undefined)
    t.same(r.routes, [{ dst: '0.0.0.0/0', gw: gateway }])
    t.same(r.dns.nameservers, [gateway])
    t.same(r.dns.search, ['svc.plexus.internal', 'plexus.internal'])

    const ns = netns.split('/').pop() as string
    const addr = run('ip', ['-n', ns, '-o', '-4', 'addr', 'show', 'eth0']).stdout
    t.match(addr, r.ips[0]?.address as string, 'address is on eth0')
    t.match(run('ip', ['-n', ns, 'route']).stdout, `default via ${gateway} dev eth0`)
    t.equal(run('ip', ['netns', 'exec', ns, 'ping', '-c1', '-W2', gateway]).status, 0, 'gateway answers')

    const del = plugin(c, H, { command: 'DEL', containerId: id, netns }, netconf(c, H, { cniVersion: v }))
    t.equal(del.status, 0, `${v} DEL: ${del.raw}`)
    t.equal(del.raw, '', 'DEL prints nothing')
    t.equal(run('ip', ['-n', ns, 'link', 'show', 'eth0']).status, 1, 'eth0 is gone')
  }
  t.same(hostVeths(c, H), [], 'no host veth left')
  t.same(allocations(c, H), [], 'no address left allocated')
})

// A bridge whose MAC was never set takes its lowest port's MAC and changes it as veths come and go; every
// container's neighbour entry for the gateway then goes stale (1–2 s without DNS or routing in bench/chaos).
t.test('the gateway keeps its MAC while ports come and go', async (t) => {
  const hns = hostNs(c, H)
  const mac = () => /link\/ether (\S+)/.exec(run('ip', ['-n', hns, 'link', 'show', 'plexus0']).stdout)?.[1]
  const before = mac()
  t.match(before, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
  const port = `lowmac${process.pid % 100000}`
  t.teardown(() => run('ip', ['-n', hns, 'link', 'del', port]))
  const add = [
    'link',
    'add',
    port,
    'address',
    '00:00:00:00:00:01',
    'type',
    'veth',
    'peer',
    'name',
    `${port}p`,
  ]
  t.equal(run('ip', ['-n', hns, ...add]).status, 0)
  t.equal(run('ip', ['-n', hns, 'link', 'set', port, 'master', 'plexus0']).status, 0)
  t.equal(mac(), before, 'a port with a lower MAC does not take the bridge address')
  t.equal(run('ip', ['-n', hns, 'link', 'del', port]).status, 0)
  t.equal(mac(), before, 'nor does its removal')
})

t.test(
  'repeated ADD returns the same result; a damaged attachment is rebuilt with the same address',
  async (t) => {
    const id = newId()
    const netns = containerNs(t, `${c.name}-rep`)
    const conf = netconf(c, H)
    const first = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
    const again = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
    t.equal(again.status, 0)
    t.same(again.out, first.out, 'same result')
    const address = (first.out as unknown as Result).ips[0]?.address as string
    run('ip', ['-n', `${c.name}-rep`, 'addr', 'flush', 'dev', 'eth0'])
    const repaired = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
    t.equal(repaired.status, 0, repaired.raw)
    t.equal((repaired.out as unknown as Result).ips[0]?.address, address, 'same address after repair')
    t.match(run('ip', ['-n', `${c.name}-rep`, '-4', 'addr']).stdout, address)
    t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
  },
)

t.test('CHECK passes on a good attachment and names what is wrong on a bad one', async (t) => {
  const id = newId()
  const nsName = `${c.name}-chk`
  const netns = containerNs(t, nsName)
  const conf = netconf(c, H)
  const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  const withPrev = { ...conf, prevResult: add.out }
  t.equal(plugin(c, H, { command: 'CHECK', containerId: id, netns }, withPrev).status, 0, 'CHECK ok')
  run('ip', ['-n', nsName, 'route', 'del', 'default'])
  run('ip', ['-n', nsName, 'link', 'set', 'eth0', 'mtu', '1400'])
  const bad = plugin(c, H, { command: 'CHECK', containerId: id, netns }, withPrev)
  t.equal(bad.status, 1)
  t.equal(bad.out?.code, 110)
  t.match(bad.out?.msg, /MTU 1400, want 1450/)
  t.match(bad.out?.msg, new RegExp(`no default route via ${gateway.replace(/\./g, '\\.')}`))
  const old = plugin(c, H, { command: 'CHECK', containerId: id, netns }, { ...withPrev, cniVersion: '0.3.1' })
  t.equal(old.out?.code, 1, 'CHECK needs 0.4.0 or later')
  const unknown = plugin(c, H, { command: 'CHECK', containerId: 'nobody', netns }, withPrev)
  t.equal(unknown.out?.code, 3, 'CHECK of an unknown container')
  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
})

t.test('DEL is idempotent: twice, namespace gone, CNI_NETNS empty, agent down', async (t) => {
  const conf = netconf(c, H)
  const ids = [newId(), newId(), newId()]
  const names = ids.map((_, i) => `${c.name}-del${i}`)
  const paths = names.map((n) => containerNs(t, n))
  for (const [i, id] of ids.entries()) {
    t.equal(plugin(c, H, { command: 'ADD', containerId: id, netns: paths[i] }, conf).status, 0)
  }
  t.equal(plugin(c, H, { command: 'DEL', containerId: ids[0], netns: paths[0] }, conf).status, 0, 'first DEL')
  t.equal(
    plugin(c, H, { command: 'DEL', containerId: ids[0], netns: paths[0] }, conf).status,
    0,
    'second DEL',
  )
  run('ip', ['netns', 'delete', names[1] as string])
  t.equal(
    plugin(c, H, { command: 'DEL', containerId: ids[1], netns: paths[1] }, conf).status,
    0,
    'netns gone',
  )
  t.equal(plugin(c, H, { command: 'DEL', containerId: ids[1], netns: '' }, conf).status, 0, 'empty CNI_NETNS')
  t.equal(c.stop(H).status, 0)
  const down = plugin(c, H, { command: 'DEL', containerId: ids[2], netns: paths[2] }, conf)
  t.equal(down.status, 0, `agent down: DEL succeeds, the agent finishes it when it starts: ${down.raw}`)
  t.equal(c.start(H).status, 0)
  await waitReady(c, H)
  t.equal(
    plugin(c, H, { command: 'DEL', containerId: ids[2], netns: paths[2] }, conf).status,
    0,
    'after restart',
  )
  t.same(hostVeths(c, H), [])
  t.same(allocations(c, H), [])
  t.same(records(), [])
})

t.test('bad input gets the right CNI error and leaves nothing allocated', async (t) => {
  const netns = containerNs(t, `${c.name}-bad`)
  const conf = netconf(c, H)
  const call = { command: 'ADD', containerId: newId(), netns }
  const cases: [string, ReturnType<typeof plugin>, number, RegExp][] = [
    ['empty stdin', plugin(c, H, call, ''), 6, /no network configuration/],
    ['invalid JSON', plugin(c, H, call, '{"cniVersion": "1.1.0",'), 6, /not valid JSON/],
    ['unknown cniVersion', plugin(c, H, call, { ...conf, cniVersion: '9.9.9' }), 1, /9\.9\.9/],
    [
      'missing CNI_COMMAND',
      plugin(c, H, { ...call, env: { CNI_COMMAND: undefined } }, conf),
      4,
      /CNI_COMMAND/,
    ],
    [
      'missing CNI_CONTAINERID',
      plugin(c, H, { ...call, containerId: undefined }, conf),
      4,
      /CNI_CONTAINERID/,
    ],
    ['missing CNI_NETNS', plugin(c, H, { ...call, netns: undefined }, conf), 4, /CNI_NETNS/],
    ['missing CNI_IFNAME', plugin(c, H, { ...call, env: { CNI_IFNAME: undefined } }, conf), 4, /CNI_IFNAME/],
    ['missing CNI_PATH', plugin(c, H, { ...call, env: { CNI_PATH: undefined } }, conf), 4, /CNI_PATH/],
    [
      'netns does not exist',
      plugin(c, H, { ...call, netns: '/run/netns/no-such-ns' }, conf),
      3,
      /does not exist/,
    ],
    [
      'static IP outside the subnet',
      plugin(c, H, call, { ...conf, runtimeConfig: { ips: ['192.168.77.7/24'] } }),
      7,
      /outside this host's subnet/,
    ],
    [
      'static IP with the wrong prefix',
      plugin(c, H, call, { ...conf, runtimeConfig: { ips: [`${gateway.replace(/\.1$/, '.9')}/16`] } }),
      7,
      /prefix length/,
    ],
    ['static gateway address', plugin(c, H, { ...call, args: `IP=${gateway}` }, conf), 7, /gateway address/],
    ['wrong type', plugin(c, H, call, { ...conf, type: 'bridge' }), 7, /"type"/],
    ['unsupported field', plugin(c, H, call, { ...conf, bridge: 'br0' }), 2, /bridge/],
    ['unknown CNI_ARGS key', plugin(c, H, { ...call, args: 'FOO=1' }, conf), 4, /FOO/],
    [
      'agent socket missing',
      plugin(c, H, call, { ...conf, socket: '/run/plexus-nowhere.sock' }),
      11,
      /not reachable/,
    ],
  ]
  for (const [what, r, code, msg] of cases) {
    t.equal(r.status, 1, `${what}: non-zero exit`)
    t.equal(r.out?.code, code, `${what}: code ${code} (${r.raw.trim()})`)
    t.match(r.out?.msg, msg, `${what}: message`)
  }
  t.same(allocations(c, H), [], 'nothing allocated')
  t.same(hostVeths(c, H), [], 'no veth made')
})

t.test(
  'GC releases attachments missing from cni.dev/valid-attachments (and cni.dev/attachments)',
  async (t) => {
    const conf = netconf(c, H)
    const netns = containerNs(t, `${c.name}-gc`)
    const ids = [newId(), newId(), newId()]
    for (const id of ids)
      plugin(c, H, { command: 'ADD', containerId: id, netns, ifname: `g${ids.indexOf(id)}` }, conf)
    const keep = [{ containerID: ids[0], ifname: 'g0' }]
    const gc = plugin(c, H, { command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': keep })
    t.equal(gc.status, 0, gc.raw)
    t.same(
      allocations(c, H).map((a) => a.containerId),
      [ids[0]],
      'only the valid attachment keeps its address',
    )
    t.equal(hostVeths(c, H).length, 1)
    const old = plugin(c, H, { command: 'GC' }, { ...conf, 'cni.dev/attachments': [] })
    t.equal(old.status, 0, 'older spelling accepted')
    t.same(allocations(c, H), [])
    t.same(records(), [])
    t.equal(plugin(c, H, { command: 'GC' }, { ...conf, cniVersion: '1.0.0' }).out?.code, 1, 'GC needs 1.1.0')
  },
)

t.test('STATUS: 0 with the agent up, 50 with it down', async (t) => {
  const conf = netconf(c, H)
  t.equal(plugin(c, H, { command: 'STATUS' }, conf).status, 0)
  t.equal(c.stop(H).status, 0)
  const down = plugin(c, H, { command: 'STATUS' }, conf)
  t.equal(down.out?.code, 50, down.raw)
  t.equal(c.start(H).status, 0)
  await waitReady(c, H)
  const v = plugin(c, H, { command: 'VERSION' }, { cniVersion: '1.1.0' })
  t.same(v.out, { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] })
})
