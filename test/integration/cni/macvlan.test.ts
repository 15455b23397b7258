// macvlan networks (issue 17 item 3) with the real plugin and agents on two
// fixture hosts: containers get a macvlan of the host's underlay interface and
// an address of the underlay subnet from their host's block, reach each other
// across hosts and the underlay directly, the host reaches its own containers
// through its shim, 100 ADDs spread over the hosts never share an address,
// custom MAC and gateway are honoured, bad input is code 7 with nothing made,
// and deleting the network leaves no device, route, lease or allocation.
import { existsSync, readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { type Cluster, eventually, run, upCluster } from '../../helpers/fixture.js'
import { containerNs, firewallText, hostNs, netconf, plugin, waitReady } from './plugin.js'

t.setTimeout(900_000)

// set by each firewall backend's run below; the helpers read the cluster of the run in progress
let c: Cluster
/** each host's firewall before the network existed: nothing of it may be left after rm */
let rulesBefore: string[] = []

const NET = 'lan'
const RANGE = '192.0.2.128/25'
const UNDERLAY_GW = '192.0.2.1'
let seq = 0
const newId = () => `mv-${process.pid}-${seq++}`

interface Result {
  interfaces: { name: string; mac?: string; sandbox?: string }[]
  ips: { address: string; gateway?: string }[]
  routes: { dst: string; gw?: string }[]
}

interface NetworksReply {
  networks: {
    network: { name: string }
    blocks: { host: string; subnet: string }[]
    self?: { state: string }
  }[]
}

const conf = (host: string, extra: Record<string, unknown> = {}) =>
  netconf(c, host, { network: NET, ...extra })

function allocations(cl: Cluster, host: string): { containerId: string; address: string }[] {
  const file = `/run/plexus-fixture/${cl.name}/${host}/state/ipam/networks/${NET}/allocations.json`
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { allocations: [] }).allocations : []
}

/** block lease records in h1's store (kv ls answers 404 when there are none) */
function netLeases(): number {
  const r = c.exec('h1', ['plexctl', '-o', 'json', 'kv', 'ls', 'netleases/'])
  if (r.status === 0) return (JSON.parse(r.stdout) as string[]).length
  return /404|not found|no key/i.test(r.stderr) ? 0 : -1
}

const inHost = (host: string, cmd: string[]) => run('ip', ['netns', 'exec', hostNs(c, host), ...cmd])
const ping = (ns: string, to: string) =>
  run('ip', ['netns', 'exec', ns, 'ping', '-c1', '-W2', to]).status === 0
const shims = (host: string) =>
  inHost(host, ['ip', '-o', 'link', 'show']).stdout.match(/plxm-[0-9a-f]{8}/g) ?? []

/** ADD in a fresh namespace on host; returns the namespace and the result */
function add(t: Test, host: string, id: string, extra: Record<string, unknown> = {}) {
  const ns = `${c.name}-${id.split('-').pop()}`
  const netns = containerNs(t, ns)
  const r = plugin(c, host, { command: 'ADD', containerId: id, netns }, conf(host, extra))
  return { ns, netns, r, out: r.out as unknown as Result }
}

const blocks = () =>
  Object.fromEntries(
    c.plexctlJson<NetworksReply>('h1', ['network', 'ls']).networks[0]!.blocks.map((b) => [b.host, b.subnet]),
  )
const inBlock = (addr: string, block: string) => {
  const [base, len] = block.split('/')
  const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0)
  const size = 2 ** (32 - Number(len))
  return n(addr) >= n(base!) && n(addr) < n(base!) + size
}

for (const firewall of ['iptables', 'nftables'] as const)
  t.test(`macvlan network with the ${firewall} firewall`, async (t) => {
    c = upCluster(t, { hosts: 2, prefix: 'mv', firewall })
    await Promise.all([waitReady(c, 'h1'), waitReady(c, 'h2')])
    rulesBefore = ['h1', 'h2'].map((h) => firewallText(c, h))

    t.test('network create is validated and names every problem', async (t) => {
      const bad = c.exec('h1', [
        'plexctl',
        'network',
        'create',
        'Bad_Name',
        '--subnet',
        '192.0.2.0/24',
        '--range',
        '10.0.0.0/25',
        '--gateway',
        '192.0.2.200',
      ])
      t.not(bad.status, 0)
      t.match(bad.stderr, /DNS label/)
      t.match(bad.stderr, /not inside subnet/)
      const ok = c.exec('h1', [
        'plexctl',
        'network',
        'create',
        NET,
        '--driver',
        'macvlan',
        '--subnet',
        '192.0.2.0/24',
        '--range',
        RANGE,
      ])
      t.equal(ok.status, 0, ok.stderr)
      t.match(ok.stdout, /gateway:\s+192\.0\.2\.1/)
      const taken = c.exec('h2', [
        'plexctl',
        'network',
        'create',
        'other',
        '--subnet',
        '192.0.2.0/24',
        '--range',
        '192.0.2.192/26',
      ])
      t.not(taken.status, 0, 'an overlapping range is refused')
      t.match(taken.stderr, /overlaps network lan/)
      // each host's own block acquired in its own view: until then its ADD answers code 11 (settling)
      const ready = await eventually(() => {
        const [n1, n2] = ['h1', 'h2'].map(
          (h) => c.plexctlJson<NetworksReply>(h, ['network', 'ls']).networks[0],
        )
        return (
          n2?.blocks.length === 2 &&
          n1?.self?.state === 'acquired' &&
          n2.self?.state === 'acquired' &&
          shims('h1').length === 1 &&
          shims('h2').length === 1
        )
      }, 30_000)
      t.ok(ready, 'both hosts hold a block and made their shim')
    })

    t.test(
      'containers on two hosts reach each other, the underlay and (their own host) the host',
      async (t) => {
        const b = blocks()
        const idA = newId()
        const idZ = newId()
        const a = add(t, 'h1', idA)
        t.equal(a.r.status, 0, a.r.raw + a.r.stderr)
        const z = add(t, 'h2', idZ)
        t.equal(z.r.status, 0, z.r.raw + z.r.stderr)
        const ipA = a.out.ips[0]!.address.split('/')[0]!
        const ipZ = z.out.ips[0]!.address.split('/')[0]!
        t.match(a.out.ips[0]!.address, /\/24$/, 'the underlay prefix')
        t.ok(inBlock(ipA, b.h1!), `${ipA} in h1's block ${b.h1}`)
        t.ok(inBlock(ipZ, b.h2!), `${ipZ} in h2's block ${b.h2}`)
        t.same(a.out.routes[0], { dst: '0.0.0.0/0', gw: UNDERLAY_GW })
        t.match(run('ip', ['-n', a.ns, '-d', 'link', 'show', 'eth0']).stdout, /macvlan mode bridge/)
        t.ok(ping(a.ns, ipZ), 'h1 container -> h2 container')
        t.ok(ping(z.ns, ipA), 'h2 container -> h1 container')
        t.ok(ping(a.ns, UNDERLAY_GW), 'container -> the underlay router')
        t.ok(ping(a.ns, '192.0.2.12'), "h1 container -> h2's underlay address")
        t.equal(
          inHost('h1', ['ping', '-c1', '-W2', ipA]).status,
          0,
          'h1 reaches its own container through the shim',
        )
        t.equal(
          inHost('h2', ['ping', '-c1', '-W2', ipZ]).status,
          0,
          'h2 reaches its own container through the shim',
        )

        const check = plugin(
          c,
          'h1',
          { command: 'CHECK', containerId: idA, netns: a.netns },
          {
            ...conf('h1'),
            prevResult: a.r.out,
          },
        )
        t.equal(check.status, 0, `CHECK: ${check.raw}`)
        run('ip', ['-n', a.ns, 'link', 'set', 'eth0', 'down'])
        const broken = plugin(
          c,
          'h1',
          { command: 'CHECK', containerId: idA, netns: a.netns },
          {
            ...conf('h1'),
            prevResult: a.r.out,
          },
        )
        t.equal(broken.out?.code, 110, 'CHECK sees the interface down')
        const again = plugin(c, 'h1', { command: 'ADD', containerId: idA, netns: a.netns }, conf('h1'))
        t.equal(
          (again.out as unknown as Result).ips[0]?.address,
          a.out.ips[0]?.address,
          'a repeated ADD repairs with the same address',
        )
        t.ok(ping(a.ns, ipZ), 'and it works again')

        // the shim is the datapath's: removed by hand, it comes back
        const [shim] = shims('h1')
        inHost('h1', ['ip', 'link', 'del', shim!])
        t.ok(await eventually(() => shims('h1').length === 1, 15_000), 'the shim is repaired')
        t.ok(
          await eventually(() => inHost('h1', ['ping', '-c1', '-W2', ipA]).status === 0, 10_000),
          'and the host reaches its container again',
        )

        for (const [host, x, id] of [
          ['h1', a, idA],
          ['h2', z, idZ],
        ] as const) {
          const del = plugin(c, host, { command: 'DEL', containerId: id, netns: x.netns }, conf(host))
          t.equal(del.status, 0, del.raw)
          t.not(run('ip', ['-n', x.ns, 'link', 'show', 'eth0']).status, 0, 'DEL removed eth0')
        }
        t.same(allocations(c, 'h1'), [], 'DEL released the addresses')
      },
    )

    t.test('custom MAC and gateway are honoured', async (t) => {
      const mac = '02:42:c0:00:02:99'
      const gw = '192.0.2.254'
      const id = newId()
      const x = add(t, 'h1', id, {
        args: { cni: { mac }, plexus: { gateway: gw, routes: [{ dst: '198.51.100.0/24' }] } },
      })
      t.equal(x.r.status, 0, x.r.raw)
      t.equal(x.out.interfaces[0]?.mac, mac)
      t.equal(x.out.ips[0]?.gateway, gw)
      t.match(run('ip', ['-n', x.ns, 'link', 'show', 'eth0']).stdout, `link/ether ${mac}`)
      const routes = run('ip', ['-n', x.ns, '-4', 'route', 'show', 'dev', 'eth0']).stdout
      t.match(routes, `default via ${gw}`)
      t.match(routes, `198.51.100.0/24 via ${gw}`)
      t.equal(plugin(c, 'h1', { command: 'DEL', containerId: id, netns: x.netns }, conf('h1')).status, 0)
    })

    t.test('invalid input is code 7 and nothing is made', async (t) => {
      for (const [what, extra] of [
        ['an unknown network', { network: 'nope' }],
        ['a gateway outside the subnet', { args: { plexus: { gateway: '10.9.9.9' } } }],
        ['a static address outside the block', { args: { cni: { ips: ['192.0.2.50'] } } }],
        [
          'a published port',
          { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } },
        ],
      ] as const) {
        const id = newId()
        const x = add(t, 'h1', id, extra)
        t.equal(x.r.out?.code, 7, `${what}: ${x.r.raw}`)
        t.not(run('ip', ['-n', x.ns, 'link', 'show', 'eth0']).status, 0, `${what}: no eth0`)
        t.notOk(
          allocations(c, 'h1').some((a) => a.containerId === id),
          `${what}: no address`,
        )
      }
    })

    t.test('100 ADDs spread over the hosts: no address handed out twice', async (t) => {
      const seen = new Map<string, string>()
      const made: { host: string; id: string; netns: string }[] = []
      for (let i = 0; i < 100; i++) {
        const host = i % 2 ? 'h2' : 'h1'
        const id = newId()
        const x = add(t, host, id)
        t.equal(x.r.status, 0, x.r.raw)
        const ip = x.out.ips?.[0]?.address ?? `none-${i}`
        t.notOk(seen.has(ip), `${ip} handed out once (${seen.get(ip) ?? id})`)
        seen.set(ip, id)
        made.push({ host, id, netns: x.netns })
      }
      t.equal(seen.size, 100)
      for (const m of made)
        plugin(c, m.host, { command: 'DEL', containerId: m.id, netns: m.netns }, conf(m.host))
      t.same([...allocations(c, 'h1'), ...allocations(c, 'h2')], [], 'all released')
    })

    t.test('nothing is left after the network is deleted', async (t) => {
      const rm = c.exec('h2', ['plexctl', 'network', 'rm', NET])
      t.equal(rm.status, 0, rm.stderr)
      const gone = await eventually(
        () => shims('h1').length + shims('h2').length === 0 && netLeases() === 0,
        20_000,
      )
      t.ok(gone, 'no shim on either host, no block lease in the store')
      for (const h of ['h1', 'h2']) {
        t.notMatch(inHost(h, ['ip', '-4', 'route']).stdout, '192.0.2.128', `${h}: no route to a block`)
        t.notOk(
          existsSync(`/run/plexus-fixture/${c.name}/${h}/state/ipam/networks/${NET}`),
          `${h}: no allocations`,
        )
      }
      t.same(c.plexctlJson<NetworksReply>('h1', ['network', 'ls']).networks, [])
      t.same(
        ['h1', 'h2'].map((h) => firewallText(c, h)),
        rulesBefore,
        'the firewall is as it was before the network',
      )
    })
  })
