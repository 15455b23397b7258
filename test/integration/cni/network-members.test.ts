// `plexctl networks`, `network rm`'s refusal and `inspect` across networks
// (issue 17 item 5), with the real plugin and agents on two fixture hosts
// (one firewall backend: nothing here depends on it): a container on the
// cluster network, a bridge network and a macvlan network, another on the
// macvlan network alone. Every host lists the members after ADD and forgets
// them after DEL; `network rm` is refused while containers are attached and
// allowed with --force or after DEL; inspect shows every interface; macvlan
// CHECK fails once the default route ADD set is gone.
import t, { type Test } from 'tap'
import { type Cluster, eventually, run, upCluster } from '../../helpers/fixture.js'
import { containerNs, netconf, plugin, waitReady } from './plugin.js'

// a fixture of two hosts; most of the time is plexctl's start (seconds each when the machine is loaded)
t.setTimeout(300_000)

let c: Cluster
let seq = 0
const newId = () => `nm-${process.pid}-${seq++}`

const HOSTS = ['h1', 'h2'] as const
const TEAL = { name: 'teal', cidr: '10.80.0.0/16' }
const WAN = { name: 'wan', subnet: '192.0.2.0/24', range: '192.0.2.128/25', gateway: '192.0.2.1' }

interface Member {
  containerId: string
  ifname: string
  host: string
  address: string
  mac?: string
  gateway?: string
  network: string
}
interface Overview {
  networks: { name: string; driver: string; backend: string; hosts: { host: string }[]; members: Member[] }[]
}

const overview = (host: string) => c.plexctlJson<Overview>(host, ['networks'])
/** "<container>/<ifname>" of each network's members in one listing */
const membersOf = (o: Overview) =>
  Object.fromEntries(
    o.networks.map((n) => [n.name, n.members.map((m) => `${m.containerId}/${m.ifname}`).sort()]),
  )
/**
 * every host lists exactly these members of these networks (one `plexctl networks` per host and try: under
 * load a plexctl start costs seconds)
 */
const everywhere = (want: Record<string, string[]>) =>
  eventually(
    () =>
      HOSTS.every((h) => {
        const got = membersOf(overview(h))
        return Object.entries(want).every(
          ([n, ms]) => JSON.stringify(got[n] ?? []) === JSON.stringify(ms.sort()),
        )
      }),
    60_000,
    500,
  )

/** member records in the host's store (kv ls answers 404 when there are none) */
function memberRecords(host: string): number {
  const r = c.exec(host, ['plexctl', '-o', 'json', 'kv', 'ls', 'netmembers/'])
  if (r.status === 0) return (JSON.parse(r.stdout) as string[]).length
  return /404|not found|no key/i.test(r.stderr) ? 0 : -1
}

/** ADD `ifname` of container `id` (namespace made when new) on `network` (absent: the cluster's); DEL in teardown */
function add(t: Test, host: string, network: string | undefined, id: string, ifname: string, ns?: string) {
  const name = ns ?? `${c.name}-${id.split('-').pop()}`
  const netns = `/run/netns/${name}`
  if (!ns) containerNs(t, name)
  const conf = netconf(c, host, network ? { network } : {})
  const call = { containerId: id, netns, ifname }
  const r = plugin(c, host, { command: 'ADD', ...call }, conf)
  t.equal(r.status, 0, `ADD ${id}/${ifname} on ${network ?? 'plexus'}: ${r.raw}${r.stderr}`)
  const del = () => plugin(c, host, { command: 'DEL', ...call }, conf)
  t.teardown(del)
  return {
    ns: name,
    netns,
    r,
    del,
    check: () => plugin(c, host, { command: 'CHECK', ...call }, { ...conf, prevResult: r.out }),
  }
}

t.test('network members, rm refusal and inspect across networks', async (t) => {
  c = upCluster(t, { hosts: 2, prefix: 'nm', firewall: 'iptables' })
  await Promise.all(HOSTS.map((h) => waitReady(c, h)))
  const create = (args: string[]) => {
    const r = c.exec('h1', ['plexctl', 'network', 'create', ...args])
    t.equal(r.status, 0, r.stderr)
  }
  create([TEAL.name, '--cidr', TEAL.cidr])
  create([WAN.name, '--driver', 'macvlan', '--subnet', WAN.subnet, '--range', WAN.range])
  // a lease listed may still be settling: each host says when its own is acquired
  const acquired = (h: string) =>
    c
      .plexctlJson<{ networks: { self?: { state: string } }[] }>(h, ['network', 'ls'])
      .networks.filter((n) => n.self?.state === 'acquired').length === 2
  t.ok(
    await eventually(() => HOSTS.every(acquired), 60_000, 500),
    'every host holds a subnet of each network',
  )

  const a = newId()
  const b = newId()
  const a0 = add(t, 'h1', undefined, a, 'eth0')
  const a1 = add(t, 'h1', TEAL.name, a, 'eth1', a0.ns)
  const a2 = add(t, 'h1', WAN.name, a, 'eth2', a0.ns)
  const b0 = add(t, 'h2', WAN.name, b, 'eth0')

  t.test('every host lists the members', async (t) => {
    t.ok(
      await everywhere({
        plexus: [`${a}/eth0`],
        [TEAL.name]: [`${a}/eth1`],
        [WAN.name]: [`${a}/eth2`, `${b}/eth0`],
      }),
      'cluster network: eth0; bridge network: eth1; macvlan network: both containers',
    )
    const wan = overview('h1').networks.find((n) => n.name === WAN.name)
    t.match(wan, { driver: 'macvlan', backend: /^macvlan parent/ })
    t.same(wan?.hosts.map((h) => h.host).sort(), ['h1', 'h2'], "each host's block")
    t.match(
      wan?.members.find((m) => m.containerId === b),
      { host: 'h2', gateway: WAN.gateway, address: /^192\.0\.2\.(1[3-9]\d|2\d\d)$/, mac: /^[0-9a-f:]{17}$/ },
    )
    const text = c.exec('h2', ['plexctl', 'networks']).stdout
    for (const n of ['plexus', TEAL.name, WAN.name]) t.match(text, new RegExp(`network:\\s+${n}\\n`))
    t.match(text, a.slice(0, 12))
  })

  t.test('inspect shows every interface of the container, from any host', async (t) => {
    const json = c.plexctlJson<{ interfaces: Member[] }>('h2', ['inspect', a])
    t.same(
      json.interfaces.map((i) => [i.ifname, i.network]),
      [
        ['eth0', 'plexus'],
        ['eth1', TEAL.name],
        ['eth2', WAN.name],
      ],
    )
    t.ok(
      json.interfaces.every((i) => i.address && i.mac && i.gateway),
      'each with address, MAC, gateway',
    )
    const text = c.exec('h1', ['plexctl', 'inspect', a]).stdout
    t.match(text, /INTERFACE\s+NETWORK\s+ADDRESS\s+MAC\s+GATEWAY/)
    t.match(text, new RegExp(`eth1\\s+${TEAL.name}\\s+10\\.80\\.`))
    t.match(
      text,
      new RegExp(`eth2\\s+${WAN.name}\\s+192\\.0\\.2\\.\\d+\\s+\\S+\\s+${WAN.gateway.replace(/\./g, '\\.')}`),
    )
    // a container on a macvlan network alone has no endpoint record
    const onlyMacvlan = c.plexctlJson<{ interfaces: Member[] }>('h1', ['inspect', b])
    t.same(
      onlyMacvlan.interfaces.map((i) => [i.ifname, i.network, i.host]),
      [['eth0', WAN.name, 'h2']],
    )
  })

  t.test('network rm is refused while containers are attached', async (t) => {
    const refused = c.exec('h2', ['plexctl', 'network', 'rm', TEAL.name])
    t.equal(refused.status, 1)
    t.match(refused.stderr, /PLX_IPAM_NETWORK_IN_USE/)
    t.match(refused.stderr, `${a.slice(0, 12)}/eth1 on h1`)
    t.equal(a1.del().status, 0, 'DEL eth1')
    t.ok(await everywhere({ [TEAL.name]: [] }), 'gone from every host after DEL')
    const ok = c.exec('h2', ['plexctl', 'network', 'rm', TEAL.name])
    t.equal(ok.status, 0, `allowed once nothing is attached: ${ok.stderr}`)
  })

  t.test('macvlan CHECK verifies the default route ADD set', async (t) => {
    t.equal(b0.check().status, 0, 'CHECK passes as made')
    t.equal(a2.check().status, 0, "a second interface: eth0's default stays in charge")
    const del = run('ip', ['-n', b0.ns, 'route', 'del', 'default'])
    t.equal(del.status, 0, del.stderr)
    const broken = b0.check()
    t.equal(broken.out?.code, 110, `CHECK fails: ${broken.raw}`)
    t.match(broken.out?.msg ?? broken.out?.details, /no default route via 192\.0\.2\.1 on eth0/)
  })

  t.test('network rm --force removes a network with members; their records go with it', async (t) => {
    const refused = c.exec('h1', ['plexctl', 'network', 'rm', WAN.name])
    t.match(refused.stderr, /PLX_IPAM_NETWORK_IN_USE/)
    const forced = c.exec('h1', ['plexctl', 'network', 'rm', '--force', WAN.name])
    t.equal(forced.status, 0, forced.stderr)
    t.ok(
      await eventually(() => HOSTS.every((h) => memberRecords(h) === 0), 60_000, 500),
      'no member record left on any host',
    )
    t.equal(a0.del().status, 0)
    t.ok(await everywhere({ plexus: [] }), 'DEL of eth0 empties the cluster network everywhere')
  })
})
