// Bridge networks (issue 17 item 2) with the real plugin and agents on three
// fixture hosts, for each firewall backend: two networks and an internal one;
// containers of one network reach each other across hosts, traffic between
// networks (and from the cluster network) is dropped, `network connect A B
// --port P` opens A -> B on that port only, an internal network has no way
// out, a container on two networks has both interfaces and reaches both, DNS
// answers a container the names of its own networks only (its nameserver is
// its network's gateway; other networks' names are NXDOMAIN; a container on
// two networks resolves both; an internal network's forwards nothing), a
// wireguard network carries its traffic encrypted (never in the clear on the
// underlay) and is as isolated, every bridge address has a kernel lifetime,
// and deleting the networks leaves no device, route, rule or lease.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { underlayNs } from '../../../netns-fixtures/lib/state.js'
import { type Cluster, eventually, run, upCluster } from '../../helpers/fixture.js'
import { containerNs, firewallText, hostNs, netconf, plugin, waitReady } from './plugin.js'

t.setTimeout(900_000)

let c: Cluster
let rulesBefore: string[] = []
let seq = 0
const newId = () => `nw-${process.pid}-${seq++}`

const HOSTS = ['h1', 'h2', 'h3'] as const
const BLUE = { name: 'blue', cidr: '10.50.0.0/16' }
const RED = { name: 'red', cidr: '10.60.0.0/16' }
const VAULT = { name: 'vault', cidr: '10.70.0.0/16' }
const GREEN = { name: 'green', cidr: '10.90.0.0/16' }
/** the system's Python (a version manager's shim starts too slowly under load) */
const PYTHON = '/usr/bin/python3'
/** the fixture's underlay router: "outside" for the containers */
const OUTSIDE = '192.0.2.1'

interface Result {
  interfaces: { name: string }[]
  ips: { address: string; gateway?: string }[]
  routes: { dst: string; gw?: string }[]
  dns?: { nameservers?: string[] }
}

interface NetworksReply {
  networks: {
    network: { name: string; vni?: number }
    blocks: { host: string }[]
    self?: { state: string }
  }[]
}

const inHost = (host: string, cmd: string[]) => run('ip', ['netns', 'exec', hostNs(c, host), ...cmd])
const ping = (ns: string, to: string) =>
  run('ip', ['netns', 'exec', ns, 'ping', '-c1', '-W1', to]).status === 0
/** a TCP connection from ns to ip:port is accepted */
const connects = (ns: string, ip: string, port: number) =>
  run('ip', [
    'netns',
    'exec',
    ns,
    PYTHON,
    '-c',
    `import socket; socket.create_connection(("${ip}", ${port}), timeout=2).close()`,
  ]).status === 0
const links = (host: string, re: RegExp) => inHost(host, ['ip', '-o', 'link', 'show']).stdout.match(re) ?? []
/** the network bridges (a port's line names its bridge too: `master plxb-…`) */
const bridges = (host: string) => [...new Set(links(host, /plxb-[0-9a-f]{8}/g))]
/** VTEPs besides the cluster's plexus.1 */
const networkVteps = (host: string) => links(host, /plexus\.(?!1[@:])\d+/g)

function netLeases(): number {
  const r = c.exec('h1', ['plexctl', '-o', 'json', 'kv', 'ls', 'netleases/'])
  if (r.status === 0) return (JSON.parse(r.stdout) as string[]).length
  return /404|not found|no key/i.test(r.stderr) ? 0 : -1
}

/** ADD `ifname` of container `id` (in namespace `ns`, made when new) on `network` (absent: the cluster's) */
function add(
  t: Test,
  host: string,
  network: string | undefined,
  opts: { id?: string; ns?: string; ifname?: string } = {},
) {
  const id = opts.id ?? newId()
  const ns = opts.ns ?? `${c.name}-${id.split('-').pop()}`
  const netns = `/run/netns/${ns}`
  if (!opts.ns) containerNs(t, ns)
  const conf = netconf(c, host, network ? { network } : {})
  const r = plugin(c, host, { command: 'ADD', containerId: id, netns, ifname: opts.ifname ?? 'eth0' }, conf)
  t.teardown(() => {
    plugin(c, host, { command: 'DEL', containerId: id, netns, ifname: opts.ifname ?? 'eth0' }, conf)
  })
  const out = r.out as unknown as Result | undefined
  return { id, ns, netns, r, out, ip: out?.ips?.[0]?.address.split('/')[0] ?? 'none' }
}

/** a TCP listener on `port` in ns, stopped in teardown */
function listen(t: Test, ns: string, port: number): void {
  // up, so the test can see the listener answer before it counts on a refusal
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  const p: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', ns, PYTHON, '-m', 'http.server', String(port), '--bind', '0.0.0.0'],
    { stdio: 'ignore' },
  )
  t.teardown(() => {
    p.kill()
  })
}

const create = (host: string, args: string[]) => c.exec(host, ['plexctl', 'network', 'create', ...args])

/** `<name>.ctr.plexus.internal` of a container added without a name: the short container id */
const ctrName = (x: { id: string }) => `${x.id.slice(0, 12)}.ctr.plexus.internal`

/** asks container x's nameserver (what the runtime writes in its resolv.conf) for name's A records */
function resolve(
  x: { ns: string; out?: Result | undefined },
  name: string,
): { status: string; addrs: string[] } {
  const server = x.out?.dns?.nameservers?.[0] ?? 'none'
  const r = run('ip', [
    'netns',
    'exec',
    x.ns,
    'dig',
    '+time=2',
    '+tries=1',
    '+noall',
    '+comments',
    '+answer',
    `@${server}`,
    name,
    'A',
  ])
  return {
    status: /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer: ${r.stdout}${r.stderr}`,
    addrs: [...r.stdout.matchAll(/\sIN\s+A\s+(\S+)/g)].map((m) => m[1]!),
  }
}

for (const firewall of ['iptables', 'nftables'] as const)
  t.test(`bridge networks with the ${firewall} firewall`, async (t) => {
    c = upCluster(t, { hosts: 3, prefix: 'nw', firewall })
    await Promise.all(HOSTS.map((h) => waitReady(c, h)))
    rulesBefore = HOSTS.map((h) => firewallText(c, h))

    t.test('network create is validated, picks VNIs and refuses conflicts', async (t) => {
      const bad = create('h1', ['Bad_Name', '--cidr', '10.50.0.0/33', '--subnet-len', '8'])
      t.not(bad.status, 0)
      t.match(bad.stderr, /DNS label/)
      t.match(bad.stderr, /cidr/)
      const clash = create('h1', ['clash', '--cidr', '10.244.128.0/20'])
      t.not(clash.status, 0, 'overlapping the cluster network is refused')
      t.match(clash.stderr, /overlaps the cluster network/)
      for (const [n, extra] of [
        [BLUE, []],
        [RED, []],
        [VAULT, ['--internal']],
      ] as const) {
        const r = create('h1', [n.name, '--cidr', n.cidr, ...extra])
        t.equal(r.status, 0, r.stderr)
      }
      const vniTaken = create('h2', ['green', '--cidr', '10.80.0.0/16', '--vni', '2'])
      t.not(vniTaken.status, 0, 'a VNI in use is refused')
      t.match(vniTaken.stderr, /VNI 2 is network blue's/)
      const vnis = c
        .plexctlJson<NetworksReply>('h1', ['network', 'ls'])
        .networks.map((n) => [n.network.name, n.network.vni])
      t.same(vnis, [
        ['blue', 2],
        ['red', 3],
        ['vault', 4],
      ])
      const ready = await eventually(() => {
        const nets = c.plexctlJson<NetworksReply>('h3', ['network', 'ls']).networks
        return (
          nets.length === 3 &&
          nets.every((n) => n.blocks.length === 3) &&
          HOSTS.every((h) => bridges(h).length === 3 && networkVteps(h).length === 3)
        )
      }, 60_000)
      t.ok(ready, 'every host leases a subnet of each network and made its bridge and VTEP')
      for (const h of HOSTS) {
        const addrs = inHost(h, ['ip', '-4', '-o', 'addr', 'show'])
          .stdout.split('\n')
          .filter((l) => /plxb-/.test(l))
        t.equal(addrs.length, 3, `${h}: an address on each network's bridge`)
        t.ok(
          addrs.every((l) => /valid_lft \d+sec/.test(l)),
          `${h}: each with a kernel lifetime (gone by itself if the agent is down past its withdrawal time)`,
        )
      }
    })

    t.test('same network across hosts talks; other networks and the cluster network do not', async (t) => {
      const b1 = add(t, 'h1', BLUE.name)
      const b3 = add(t, 'h3', BLUE.name)
      const r2 = add(t, 'h2', RED.name)
      const p1 = add(t, 'h1', undefined)
      for (const x of [b1, b3, r2, p1]) t.equal(x.r.status, 0, x.r.raw + x.r.stderr)
      t.ok(b1.out?.ips[0]?.address.startsWith('10.50.'), `blue address ${b1.ip}`)
      t.ok(r2.out?.ips[0]?.address.startsWith('10.60.'), `red address ${r2.ip}`)
      t.same(
        b1.out?.routes.find((r) => r.dst === BLUE.cidr),
        { dst: BLUE.cidr, gw: b1.out?.ips[0]?.gateway },
        'the whole network is routed through its gateway',
      )
      t.ok(
        await eventually(() => ping(b1.ns, b3.ip) && ping(b3.ns, b1.ip), 15_000),
        'blue h1 <-> blue h3 across hosts',
      )
      t.notOk(ping(b1.ns, r2.ip), 'blue -> red is dropped')
      t.notOk(ping(r2.ns, b3.ip), 'red -> blue is dropped')
      t.notOk(ping(p1.ns, b3.ip), 'cluster network -> blue is dropped')
      t.notOk(ping(b1.ns, p1.ip), 'blue -> cluster network is dropped')
      t.ok(ping(b1.ns, OUTSIDE), 'blue reaches outside (masqueraded)')

      // connect blue -> red on 8080/tcp only
      listen(t, r2.ns, 8080)
      listen(t, r2.ns, 8081)
      listen(t, b3.ns, 8080)
      t.ok(
        await eventually(
          () =>
            connects(r2.ns, '127.0.0.1', 8080) &&
            connects(r2.ns, '127.0.0.1', 8081) &&
            connects(b3.ns, '127.0.0.1', 8080),
          20_000,
        ),
        'the listeners answer locally',
      )
      t.notOk(connects(b1.ns, r2.ip, 8080), 'no connection before connect')
      const con = c.exec('h2', ['plexctl', 'network', 'connect', BLUE.name, RED.name, '--port', '8080'])
      t.equal(con.status, 0, con.stderr)
      t.ok(await eventually(() => connects(b1.ns, r2.ip, 8080), 15_000), 'blue -> red:8080 after connect')
      t.ok(connects(b3.ns, r2.ip, 8080), 'from the other blue host too')
      t.notOk(connects(b1.ns, r2.ip, 8081), 'blue -> red:8081 still dropped')
      t.notOk(ping(b1.ns, r2.ip), 'blue -> red ping still dropped')
      t.notOk(connects(r2.ns, b3.ip, 8080), 'red -> blue:8080 still dropped (a link has a direction)')
      const bad = c.exec('h1', ['plexctl', 'network', 'connect', BLUE.name, 'nope'])
      t.not(bad.status, 0, 'connecting to an unknown network is refused')
      const dis = c.exec('h1', ['plexctl', 'network', 'disconnect', BLUE.name, RED.name])
      t.equal(dis.status, 0, dis.stderr)
      t.ok(
        await eventually(() => !connects(b1.ns, r2.ip, 8080), 15_000),
        'blue -> red:8080 dropped again after disconnect',
      )
    })

    t.test('an internal network reaches only itself', async (t) => {
      const v1 = add(t, 'h1', VAULT.name)
      const v2 = add(t, 'h2', VAULT.name)
      for (const x of [v1, v2]) t.equal(x.r.status, 0, x.r.raw + x.r.stderr)
      t.ok(await eventually(() => ping(v1.ns, v2.ip), 15_000), 'vault h1 -> vault h2')
      t.notOk(ping(v1.ns, OUTSIDE), 'vault has no way out')
      t.notOk(ping(v2.ns, '192.0.2.11'), "nor to another host's underlay address")
      t.notMatch(
        firewallText(c, 'h1'),
        /10\.70\.0\.0\/16[^\n]*masquerade/i,
        'no masquerade rule for the internal network',
      )
      t.match(firewallText(c, 'h1'), /10\.50\.0\.0\/16[^\n]*masquerade/i, 'but one for blue')
    })

    t.test('a container on two networks has both interfaces and reaches both', async (t) => {
      const b2 = add(t, 'h2', BLUE.name)
      const r3 = add(t, 'h3', RED.name)
      const m = add(t, 'h1', BLUE.name)
      const m2 = add(t, 'h1', RED.name, { id: m.id, ns: m.ns, ifname: 'eth1' })
      for (const x of [b2, r3, m, m2]) t.equal(x.r.status, 0, x.r.raw + x.r.stderr)
      const addrs = run('ip', ['-n', m.ns, '-o', '-4', 'addr', 'show']).stdout
      t.match(addrs, new RegExp(`eth0\\s+inet ${m.ip.replaceAll('.', '\\.')}/`), 'eth0 on blue')
      t.match(addrs, new RegExp(`eth1\\s+inet ${m2.ip.replaceAll('.', '\\.')}/`), 'eth1 on red')
      t.ok(await eventually(() => ping(m.ns, b2.ip), 15_000), 'reaches blue on another host')
      t.ok(await eventually(() => ping(m.ns, r3.ip), 15_000), 'reaches red on another host')
      const del = plugin(
        c,
        'h1',
        { command: 'DEL', containerId: m.id, netns: m.netns, ifname: 'eth1' },
        netconf(c, 'h1', { network: RED.name }),
      )
      t.equal(del.status, 0, del.raw)
      t.not(run('ip', ['-n', m.ns, 'link', 'show', 'eth1']).status, 0, 'DEL of eth1 removed it')
      t.equal(run('ip', ['-n', m.ns, 'link', 'show', 'eth0']).status, 0, 'eth0 stays')
    })

    t.test("DNS answers names of the caller's networks only", async (t) => {
      // ids whose first 12 characters (the container names) differ
      const id = () => `dns${seq++}x${process.pid}`
      const b1 = add(t, 'h1', BLUE.name, { id: id() })
      const b2 = add(t, 'h2', BLUE.name, { id: id() })
      const r1 = add(t, 'h1', RED.name, { id: id() })
      const p1 = add(t, 'h1', undefined, { id: id() })
      const m = add(t, 'h1', BLUE.name, { id: id() })
      const m2 = add(t, 'h1', RED.name, { id: m.id, ns: m.ns, ifname: 'eth1' })
      for (const x of [b1, b2, r1, p1, m, m2]) t.equal(x.r.status, 0, x.r.raw + x.r.stderr)
      t.same(b1.out?.dns?.nameservers, [b1.out?.ips[0]?.gateway], "a blue container asks blue's gateway")
      t.same(p1.out?.dns?.nameservers, [p1.out?.ips[0]?.gateway], 'a cluster container the cluster gateway')
      t.ok(
        await eventually(() => resolve(b1, ctrName(b2)).addrs[0] === b2.ip, 15_000),
        "blue resolves another blue container's name (on another host)",
      )
      t.same(resolve(b1, ctrName(b1)), { status: 'NOERROR', addrs: [b1.ip] }, 'and its own')
      const nx = { status: 'NXDOMAIN', addrs: [] }
      t.same(resolve(b1, 'nothing-here.ctr.plexus.internal'), nx, 'a name that does not exist')
      t.same(resolve(b1, ctrName(r1)), nx, "red's name from blue: the same NXDOMAIN")
      t.same(resolve(b1, ctrName(p1)), nx, "the cluster network's name from blue: NXDOMAIN")
      t.same(resolve(r1, ctrName(b1)), nx, "blue's name from red")
      t.same(resolve(p1, ctrName(b1)), nx, "blue's name from the cluster network")
      t.same(resolve(p1, ctrName(p1)).addrs, [p1.ip], 'the cluster network resolves its own')
      t.same(resolve(m, ctrName(b2)).addrs, [b2.ip], 'a container on blue and red resolves blue')
      t.same(resolve(m, ctrName(r1)).addrs, [r1.ip], 'and red')
      t.same(resolve(m, ctrName(p1)), nx, 'not the cluster network')
      // an internal network resolves its own names and forwards nothing: it has no way out
      const v = add(t, 'h1', VAULT.name, { id: id() })
      t.equal(v.r.status, 0, v.r.raw + v.r.stderr)
      t.same(resolve(v, ctrName(v)).addrs, [v.ip], 'vault resolves its own names')
      t.equal(resolve(v, 'example.com').status, 'REFUSED', 'a name outside the zone is not forwarded')
    })

    t.test('a wireguard network: encrypted between hosts, isolated like the others', async (t) => {
      const r = create('h2', [GREEN.name, '--cidr', GREEN.cidr, '--backend', 'wireguard'])
      t.equal(r.status, 0, r.stderr)
      const wgUp = (h: string) => links(h, /plexus-wg/g).length === 1
      t.ok(
        await eventually(() => HOSTS.every((h) => bridges(h).length === 4 && wgUp(h)), 60_000),
        'every host made its bridge and its WireGuard device',
      )
      t.equal(networkVteps('h1').length, 3, 'and no VTEP for it')
      const g1 = add(t, 'h1', GREEN.name)
      const g3 = add(t, 'h3', GREEN.name)
      const b2 = add(t, 'h2', BLUE.name)
      for (const x of [g1, g3, b2]) t.equal(x.r.status, 0, x.r.raw + x.r.stderr)
      // the underlay captured while green pings carry a marker: WireGuard must hide it, VXLAN would not
      const pcap = join(tmpdir(), `${c.name}-green.pcap`)
      t.teardown(() => rmSync(pcap, { force: true }))
      const capture = spawn(
        'ip',
        // --immediate-mode: else the packets of the last second sit in a kernel block the SIGINT drops
        [
          'netns',
          'exec',
          underlayNs(c.name),
          'tcpdump',
          '-i',
          'any',
          '--immediate-mode',
          '-nn',
          '-U',
          '-w',
          pcap,
          'udp',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      let listening = ''
      capture.stderr.on('data', (d) => {
        listening += d
      })
      t.teardown(() => {
        capture.kill('SIGKILL')
      })
      t.ok(
        await eventually(() => /listening on/.test(listening), 5000, 20),
        'tcpdump listens on the underlay',
      )
      const marker = randomBytes(16).toString('hex')
      const marked = (ns: string, to: string) =>
        run('ip', ['netns', 'exec', ns, 'ping', '-c1', '-W1', '-p', marker, to]).status === 0
      t.ok(
        await eventually(() => marked(g1.ns, g3.ip) && marked(g3.ns, g1.ip), 20_000),
        'green h1 <-> green h3 across hosts',
      )
      t.notOk(ping(g1.ns, b2.ip), 'green -> blue is dropped')
      t.notOk(ping(b2.ns, g3.ip), 'blue -> green is dropped')
      t.ok(ping(g1.ns, OUTSIDE), 'green reaches outside (masqueraded)')
      await new Promise((r) => setTimeout(r, 200))
      capture.kill('SIGINT')
      await new Promise((r) => capture.once('exit', r))
      const raw = readFileSync(pcap)
      t.notOk(raw.includes(Buffer.from(marker, 'hex')), 'the ping payload never appears on the underlay')
      const wg = run('tcpdump', ['-nn', '-r', pcap, 'udp port 51820']).stdout.trim().split('\n')
      t.ok(wg.length >= 4, `green crossed as WireGuard UDP (${wg.length} packets)`)
      for (const [x, h] of [
        [g1, 'h1'],
        [g3, 'h3'],
      ] as const) {
        const del = plugin(
          c,
          h,
          { command: 'DEL', containerId: x.id, netns: x.netns, ifname: 'eth0' },
          netconf(c, h, { network: GREEN.name }),
        )
        t.equal(del.status, 0, del.raw)
      }
      // refused (409, members named) until the DELs have reached h2's store
      const rm = await eventually(
        () => c.exec('h2', ['plexctl', 'network', 'rm', GREEN.name]).status === 0,
        15_000,
      )
      t.ok(rm, 'green removed')
      const gone = await eventually(() => HOSTS.every((h) => bridges(h).length === 3 && !wgUp(h)), 30_000)
      t.ok(gone, 'its bridges and the WireGuard devices are gone (no wireguard overlay is left)', {
        left: HOSTS.map((h) => `${h}: ${bridges(h).join(' ')} ${links(h, /plexus-wg/g).join(' ')}`),
      })
    })

    t.test('invalid input is code 7 and nothing is made', async (t) => {
      const x = add(t, 'h1', 'nope')
      t.equal(x.r.out?.code, 7, `unknown network: ${x.r.raw}`)
      t.not(run('ip', ['-n', x.ns, 'link', 'show', 'eth0']).status, 0, 'no eth0')
    })

    t.test('nothing is left after the networks are deleted', async (t) => {
      for (const n of [BLUE, RED, VAULT]) {
        // refused (409, members named) until the other subtests' DELs have reached h2's store
        let rm = c.exec('h2', ['plexctl', 'network', 'rm', n.name])
        await eventually(() => {
          if (rm.status !== 0) rm = c.exec('h2', ['plexctl', 'network', 'rm', n.name])
          return rm.status === 0
        }, 15_000)
        t.equal(rm.status, 0, rm.stderr)
      }
      const gone = await eventually(
        () =>
          HOSTS.every((h) => bridges(h).length === 0 && networkVteps(h).length === 0) &&
          netLeases() === 0 &&
          HOSTS.map((h) => firewallText(c, h)).join('\n') === rulesBefore.join('\n'),
        30_000,
      )
      t.ok(gone, 'no bridge or VTEP of a network on any host, no lease, the firewall as before')
      for (const h of HOSTS) {
        t.same(bridges(h), [], `${h}: no plxb- link`)
        t.same(networkVteps(h), [], `${h}: no network VTEP`)
        const routes = inHost(h, ['ip', '-4', 'route']).stdout
        for (const n of [BLUE, RED, VAULT])
          t.notMatch(routes, n.cidr.slice(0, 5), `${h}: no route into ${n.name}`)
      }
      t.equal(netLeases(), 0, 'no lease left')
      t.same(
        HOSTS.map((h) => firewallText(c, h)),
        rulesBefore,
        'the firewall is as it was before the networks',
      )
      t.same(c.plexctlJson<NetworksReply>('h1', ['network', 'ls']).networks, [])
    })
  })
