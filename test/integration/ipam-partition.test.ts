// Issue 18's hostile scenario on real agents in the netns test bed: 4 hosts, a
// network of only 3 subnets (one host always waiting), short leases so they
// run out within the test. A subnet holder with running containers is cut off
// from the underlay for 72 s while containers are started on the other hosts;
// the waiting host takes the cut-off host's subnet once that lease may be
// reclaimed, and hands out the same addresses. Checked every ~200 ms (as often
// as the machine lets it) from every host's kernel (bridge addresses, container
// addresses) and every ~2 s from every host's endpoint list (its API's
// /v1/endpoints, what `plexctl endpoints` lists): never
// one address on two live containers, never one subnet on two bridges; after
// the heal, no bridge or lease held twice. Takes 3-6 minutes (long: run alone).
import { execFile, spawnSync } from 'node:child_process'
import t from 'tap'
import { CLUSTER, Cluster, eventually, uniqueName } from '../helpers/fixture.js'
import { hostApi } from '../helpers/runner.js'

// a multi-host fixture run outlasts tap's 300 s file default on a loaded 2-core machine
t.setTimeout(1_200_000)

const CUT_MS = 72_000
/** 40 s leases: fenced 20 s and withdrawn ~35 s after the last confirmed renewal (src/ipam/README.md) */
const AGENT_CONFIG = {
  network: {
    seed: {
      Network: '10.250.0.0/16',
      SubnetMin: '10.250.1.0',
      SubnetMax: '10.250.3.0',
      Backend: { Type: 'vxlan' },
    },
    leaseTtlMs: 40_000,
    leaseRenewMs: 2000,
    leaseClockDriftMs: 1000,
    leaseSettleMs: 3000,
  },
  // leases this short are confirmed by node records refreshed often (src/ipam/README.md)
  cluster: { refreshIntervalMs: 3000 },
}

interface Listing {
  hosts: { name: string; ns: string }[]
  containers: { name: string; host: string; ns: string }[]
}
interface Subnets {
  leases: { subnet: string; host: string }[]
  self: { state: string; subnet?: string }
}
interface Endpoint {
  containerId: string
  host: string
  ipv4: string
  withdrawn?: string
}

const ip = (args: string[]) => spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 }).stdout ?? ''
/** IPv4 addresses (address/len) on a device in a namespace, as the kernel has them now */
const addrs = (ns: string, dev: string) =>
  [...ip(['-n', ns, '-4', '-o', 'addr', 'show', 'dev', dev]).matchAll(/inet (\S+)/g)].map(
    (m) => m[1] as string,
  )
const subnetOf = (a: string) => a.split('.').slice(0, 3).join('.')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** the fixture CLI without blocking, so the kernel check keeps running while containers start (slow under load) */
const fixture = (args: string[]) =>
  new Promise<{ status: number; stdout: string }>((resolve) =>
    execFile(CLUSTER, args, { encoding: 'utf8', timeout: 120_000 }, (err, stdout) =>
      resolve({ status: err ? 1 : 0, stdout }),
    ),
  )

t.test(
  '72 s partition of a subnet holder with only 3 subnets for 4 hosts: no address or subnet held twice',
  { timeout: 900_000 },
  async (t) => {
    const c = new Cluster(uniqueName('pt'))
    t.teardown(() => {
      c.down()
    })
    const up = c.cli([
      'up',
      '--name',
      c.name,
      '--hosts',
      '4',
      '--cidr',
      AGENT_CONFIG.network.seed.Network,
      '--no-wait-lease',
      '--wait',
      '120',
      '--agent-config',
      JSON.stringify(AGENT_CONFIG),
    ])
    t.equal(up.status, 0, up.stderr)
    const list = () => JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as Listing
    const hosts = list().hosts
    // what `plexctl -o json subnets` and `plexctl -o json endpoints` print, from the agent's API socket: no
    // process start per look, so the checks take no CPU from the agents and a round takes milliseconds
    const ask = <T>(h: string, path: string) =>
      hostApi<T>(c, h, 'GET', path, undefined, { timeoutMs: 10_000 }).catch(() => undefined)
    const subnets = (h: string) => ask<Subnets>(h, '/v1/subnets')
    const holders = async () =>
      eventually(
        async () => {
          const st = (await Promise.all(hosts.map((h) => subnets(h.name)))).map((v) => v?.self.state)
          return st.filter((s) => s === 'acquired').length === 3 && st.includes('no-subnet') ? st : undefined
        },
        90_000,
        1000,
      )
    const states = await holders()
    if (!states) {
      t.fail('three hosts acquired a subnet and one waits')
      return
    }
    const victim = hosts[states.indexOf('acquired')] as Listing['hosts'][number]
    const waiting = hosts[states.indexOf('no-subnet')] as Listing['hosts'][number]
    const others = hosts.filter((h) => h !== victim)

    // what every check sees: violations, with the first time each was seen
    const violations = new Map<string, string>()
    const violation = (what: string) => {
      if (!violations.has(what)) violations.set(what, new Date().toISOString())
    }
    /** the containers the fixture knows, re-read after each start */
    let ctrs: Listing['containers'] = []
    let kernelRounds = 0
    let endpointRounds = 0
    let maxBridges = 0
    /** The kernel of every host: which subnet each bridge serves, and the address of each container it serves. */
    const kernelCheck = () => {
      const bridges = new Map<string, string>() // subnet prefix -> host
      for (const h of hosts)
        for (const a of addrs(h.ns, 'plexus0')) {
          const s = subnetOf(a)
          const other = bridges.get(s)
          if (other) violation(`subnet ${s}.0 on the bridges of ${other} and ${h.name}`)
          bridges.set(s, h.name)
        }
      maxBridges = Math.max(maxBridges, bridges.size)
      const owner = new Map<string, string>()
      for (const x of ctrs) {
        // live: its host's bridge still serves its subnet (else it has no way off the host)
        for (const a of addrs(x.ns, 'eth0')) {
          const addr = a.split('/')[0] as string
          if (bridges.get(subnetOf(addr)) !== x.host) continue
          const other = owner.get(addr)
          if (other) violation(`${addr} on live containers ${other} and ${x.name}`)
          owner.set(addr, x.name)
        }
      }
      kernelRounds++
    }
    /**
     * Every host's view of the endpoints: an address served (not withdrawn) for two containers. Views are
     * not read at one instant, so only a duplicate seen in two rounds in a row counts.
     */
    let lastDup = new Set<string>()
    const endpointCheck = async () => {
      const servedBy = new Map<string, Set<string>>()
      const views = await Promise.all(
        hosts.map((h) => ask<{ endpoints: Endpoint[] }>(h.name, '/v1/endpoints')),
      )
      for (const view of views) {
        for (const e of view?.endpoints ?? []) {
          if (e.withdrawn) continue
          const set = servedBy.get(e.ipv4) ?? new Set<string>()
          set.add(e.containerId)
          servedBy.set(e.ipv4, set)
        }
      }
      const dup = new Set([...servedBy].filter(([, s]) => s.size > 1).map(([a]) => a))
      for (const a of dup) if (lastDup.has(a)) violation(`${a} listed as served for two containers`)
      lastDup = dup
      endpointRounds++
    }
    let checking = true
    const kernelLoop = (async () => {
      while (checking) {
        kernelCheck()
        await sleep(200)
      }
    })()
    const endpointLoop = (async () => {
      while (checking) {
        await endpointCheck()
        await sleep(2000)
      }
    })()

    // containers on the host that will be cut off: they get the first addresses of its subnet
    for (const n of ['v1', 'v2']) {
      const r = c.run(victim.name, n, ['sleep', '900'])
      t.equal(r.status, 0, `${n} on ${victim.name}: ${r.stdout}${r.stderr}`)
      ctrs = list().containers
    }
    const victimSubnet = (await subnets(victim.name))?.self.subnet
    t.comment(`cutting ${victim.name} (${victimSubnet}) off; ${waiting.name} waits for a subnet`)

    const victimAddrs = ctrs.flatMap((x) => addrs(x.ns, 'eth0').map((a) => a.split('/')[0] as string))
    const cutAt = Date.now()
    t.equal(c.execUnderlay(['ip', 'link', 'set', `u-${victim.name}`, 'nomaster']).status, 0, 'cut')
    let started = 0
    let refused = 0
    let i = 0
    let victimRefused = false
    let taken: number | undefined
    /** addresses of the cut-off host's containers handed out again by the waiting host during the cut */
    const reused: string[] = []
    // the cut lasts 72 s, and (on a loaded machine) until the waiting host has reused an address, at most 180 s
    while (Date.now() - cutAt < CUT_MS || (!reused.length && Date.now() - cutAt < 180_000)) {
      // containers start on the others, the waiting host first (it takes the victim's subnet when it may)
      const h = i % 2 === 0 ? waiting : (others[i % others.length] as Listing['hosts'][number])
      const r = await fixture([
        'run',
        '--name',
        c.name,
        '--host',
        h.name,
        '--ctr',
        `c${i}`,
        '--',
        'sleep',
        '900',
      ])
      if (r.status === 0) started++
      else refused++
      ctrs = list().containers
      const got = r.stdout.match(/: (\d+\.\d+\.\d+\.\d+)\//)?.[1]
      if (got && h === waiting && victimAddrs.includes(got)) reused.push(got)
      i++
      if (taken === undefined && (await subnets(waiting.name))?.self.subnet === victimSubnet) {
        taken = Date.now() - cutAt
        t.comment(`${waiting.name} acquired ${victimSubnet} ${taken} ms after the cut`)
      }
      // past half a lease unconfirmed, the cut-off host refuses new containers (PLX_ENDPOINTS_FENCED)
      if (!victimRefused && Date.now() - cutAt > 25_000) {
        victimRefused = c.run(victim.name, 'vlate', ['sleep', '900']).status !== 0
        t.ok(victimRefused, 'the cut-off host refuses a container once fenced')
      }
      await sleep(2500)
    }
    t.ok(taken !== undefined, `the waiting host took the cut-off host's subnet during the cut (${taken} ms)`)
    t.ok(
      started >= 2,
      `containers started on the other hosts during the cut: ${started} (${refused} refused)`,
    )
    t.ok(reused.length > 0, `the waiting host handed out the cut-off host's container addresses: ${reused}`)
    t.same(addrs(victim.ns, 'plexus0'), [], "the cut-off host's bridge lost its address before the heal")

    // heal, and watch for the old holder coming back
    t.equal(c.execUnderlay(['ip', 'link', 'set', `u-${victim.name}`, 'master', 'br0']).status, 0, 'heal')
    const settled = await eventually(
      async () => {
        const views = await Promise.all(hosts.map((h) => subnets(h.name)))
        return views.every((v) => {
          const held = v?.leases.map((l) => l.subnet) ?? []
          return held.length === 3 && new Set(held).size === 3
        })
          ? views
          : undefined
      },
      60_000,
      1000,
    )
    t.ok(settled, 'after the heal every host sees 3 leases on 3 different subnets')
    t.equal((await subnets(victim.name))?.self.state, 'no-subnet', 'the old holder waits: its claim is gone')
    await sleep(10_000) // keep checking after the heal
    checking = false
    await Promise.all([kernelLoop, endpointLoop])
    kernelCheck()

    // the checks share two loaded cores with the agents and the fixture (a container start took 40 s at load
    // 30): at least a round every ~10 s on average, so a duplicate that lasts (the bug held one 90 s) is seen
    t.ok(
      kernelRounds >= 20 && endpointRounds >= 1,
      `kernel checked ${kernelRounds} times, endpoints ${endpointRounds} times`,
    )
    t.equal(maxBridges, 3, 'three bridges served subnets (the check saw them)')
    t.same(
      [...violations].map(([v, at]) => `${at} ${v}`),
      [],
      'no address on two live containers, no subnet on two bridges, no address served twice',
    )
  },
)
