// bench/overlay (contract: ../shared/BENCH.md). In one run:
//  1. throughput: iperf3 container-to-container across two hosts over vxlan,
//     host-gw and wireguard (three fixture clusters), beside host-to-host over
//     the underlay, interleaved A B C D A B C D so machine noise hits all alike;
//     for wireguard also the CPU time of both wireguard-go processes per Gbit
//     carried (userspace WireGuard: this kernel has no wireguard link type);
//     and vxlan's limit (bench/lib/vxlan-limit.ts): kernel VXLAN made by hand
//     between the vxlan cluster's two host namespaces, host to host and with a
//     namespace behind a bridge and veth each side, in the same rounds; then,
//     after the rounds, the same tunnel on the underlay raised to MTU 9,000;
//  2. program_1000_ms: one host programs 1,000 remote leases from scratch;
//  3. routes_p99_ms: a new agent joins a 9-host fixture cluster; from its lease
//     record's write to its route in each other host's kernel (store, gossip,
//     watch, reconciler: the whole path); 10 joins.
// 2 runs the real Reconciler against the kernel in a throwaway namespace.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadCluster, underlayNs } from '../netns-fixtures/lib/state.js'
import { createClient } from '../src/cli/client.js'
import { backendFor } from '../src/datapath/backend/index.js'
import type { LeaseValue } from '../src/store/records.js'
import { hostSubnet, leaseRecord, topology } from '../test/integration/datapath/topology.js'
import { cpuSeconds } from './lib/proc.js'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'
import { handContainers, handTunnel, jumboUnderlay, type LimitHost, linkMtu } from './lib/vxlan-limit.js'

const CLUSTER = join(REPO, 'netns-fixtures/cluster')
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)

class Teardown {
  private fns: (() => void | Promise<void>)[] = []
  teardown(fn: () => void | Promise<void>): void {
    this.fns.push(fn)
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn()
      } catch (err) {
        progress(`teardown: ${(err as Error).message}`)
      }
    }
  }
}

function cluster(...args: string[]): string {
  return execFileSync(CLUSTER, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** starts a fixture cluster with an iperf3 server container on h2 and an idle client container on h1 */
function fixture(td: Teardown, name: string, backend: string): { serverIp: string } {
  progress(`fixture ${name}: 2 hosts, ${backend}`)
  try {
    cluster('down', '--name', name)
  } catch {
    // not up
  }
  cluster('up', '--name', name, '--hosts', '2', '--backend', backend)
  td.teardown(() => void cluster('down', '--name', name))
  const out = cluster('run', '--name', name, '--host', 'h2', '--ctr', 'srv', '--', 'iperf3', '-s')
  const serverIp = /: (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1]
  if (!serverIp) throw new Error(`no address for the server container: ${out}`)
  cluster('run', '--name', name, '--host', 'h1', '--ctr', 'cli', '--', 'sleep', '3600')
  return { serverIp }
}

/** Gbit/s received of one iperf3 run; `exec`: the command that runs it in the client's namespace */
function iperfIn(exec: string[], target: string, port: number): number {
  const [cmd, ...pre] = exec as [string, ...string[]]
  const out = execFileSync(
    cmd,
    [...pre, 'iperf3', '-c', target, '-p', String(port), '-t', String(SECONDS), '-J'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const r = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }
  return r.end.sum_received.bits_per_second / 1e9
}

function iperf(name: string, where: string[], target: string, port = 5201): number {
  return iperfIn([CLUSTER, 'exec', '--name', name, ...where, '--'], target, port)
}

/** an iperf3 server in a namespace, stopped by the teardown */
function iperfServer(td: Teardown, exec: string[], port: number): void {
  const [cmd, ...pre] = exec as [string, ...string[]]
  const srv = spawn(cmd, [...pre, 'iperf3', '-s', '-p', String(port)], { stdio: 'ignore' })
  td.teardown(() => void srv.kill())
}

/** CPU seconds (user + system) the wireguard-go processes of a fixture's hosts have used so far */
function wireguardCpuSeconds(name: string): number {
  // "PID START": the process with its start time, as the datapath records it
  const pids = (loadCluster(name)?.hosts ?? []).map((h) =>
    Number(readFileSync(join(h.dir, 'run/wireguard/plexus-wg.pid'), 'utf8').trim().split(/\s+/)[0]),
  )
  return cpuSeconds(pids)
}

async function throughput(td: Teardown) {
  const vx = fixture(td, 'bovx', 'vxlan')
  const hg = fixture(td, 'bohg', 'host-gw')
  const wg = fixture(td, 'bowg', 'wireguard')
  // an underlay server next to the vxlan cluster's container server; it answers on the hand-made tunnel too
  iperfServer(td, [CLUSTER, 'exec', '--name', 'bovx', '--host', 'h2', '--'], 5202)
  const hosts = (loadCluster('bovx')?.hosts ?? []).map((h) => ({ ns: h.ns, ip: h.ip }))
  const [a, b] = hosts as [LimitHost, LimitHost]
  const mtu = linkMtu(a.ns, 'plexus.1')
  const tunnel = handTunnel(a, b, mtu)
  td.teardown(tunnel.remove)
  const ctrs = handContainers(`bovx${process.pid.toString(36)}`, a, b, mtu)
  td.teardown(ctrs.remove)
  iperfServer(td, ['ip', 'netns', 'exec', ctrs.server], 5203)
  await new Promise((r) => setTimeout(r, 500))
  const underlay: number[] = []
  const vxlan: number[] = []
  const hostgw: number[] = []
  const wireguard: number[] = []
  /** the hand-made tunnel, host to host and container to container (bench/lib/vxlan-limit.ts) */
  const limit: number[] = []
  const limitCtr: number[] = []
  /** wireguard-go CPU seconds per Gbit carried, per run */
  const wgCpu: number[] = []
  for (let i = 0; i < RUNS; i++) {
    underlay.push(iperf('bovx', ['--host', 'h1'], '192.0.2.12', 5202))
    vxlan.push(iperf('bovx', ['--ctr', 'cli'], vx.serverIp))
    limit.push(iperfIn(['ip', 'netns', 'exec', a.ns], tunnel.target, 5202))
    limitCtr.push(iperfIn(['ip', 'netns', 'exec', ctrs.client], ctrs.target, 5203))
    hostgw.push(iperf('bohg', ['--ctr', 'cli'], hg.serverIp))
    const cpu0 = wireguardCpuSeconds('bowg')
    const gbps = iperf('bowg', ['--ctr', 'cli'], wg.serverIp)
    wireguard.push(gbps)
    wgCpu.push((wireguardCpuSeconds('bowg') - cpu0) / (gbps * SECONDS))
    progress(
      `run ${i + 1}/${RUNS}: underlay ${round(underlay[i] as number)} vxlan ${round(vxlan[i] as number)} (hand-made ${round(limit[i] as number)}, with containers ${round(limitCtr[i] as number)}) host-gw ${round(hostgw[i] as number)} wireguard ${round(gbps)} Gbit/s (${round(wgCpu[i] as number)} CPU s/Gbit)`,
    )
  }
  // last, as it changes the fixture: the underlay at a 9,000-byte MTU, the hand-made tunnel 50 below it
  tunnel.remove()
  jumboUnderlay(underlayNs('bovx'), hosts)
  const jumbo = handTunnel(a, b, 8950)
  td.teardown(jumbo.remove)
  const limitJumbo: number[] = []
  const underlayJumbo: number[] = []
  for (let i = 0; i < RUNS; i++) {
    underlayJumbo.push(iperf('bovx', ['--host', 'h1'], '192.0.2.12', 5202))
    limitJumbo.push(iperfIn(['ip', 'netns', 'exec', a.ns], jumbo.target, 5202))
    progress(
      `jumbo run ${i + 1}/${RUNS}: underlay ${round(underlayJumbo[i] as number)} hand-made vxlan ${round(limitJumbo[i] as number)} Gbit/s`,
    )
  }
  return { underlay, vxlan, hostgw, wireguard, wgCpu, limit, limitCtr, limitJumbo, underlayJumbo }
}

async function program1000(td: Teardown): Promise<number> {
  progress('program_1000: one host, 1,000 remote vxlan leases')
  const topo = await topology(td, {
    hosts: 1,
    network: { Network: '10.0.0.0/8', Backend: { Type: 'vxlan' } },
    firewall: 'nftables',
    intervalMs: 600_000,
    endpoints: false,
  })
  const h = topo.hosts[0] as (typeof topo.hosts)[0]
  const backend = backendFor('vxlan')
  for (let i = 0; i < 1000; i++) {
    const peerId = `remote${i}`
    const value: LeaseValue = {
      subnet: hostSubnet(topo.network, 100 + i),
      publicIp: `172.16.${i >> 7}.${(i & 127) + 1}`,
      hostname: `r${i}`,
      backend: backend.leaseData(topo.network, peerId),
      claimedAt: 1,
    }
    topo.records.set(peerId, leaseRecord(peerId, value, 600_000))
  }
  const t0 = performance.now()
  await h.reconciler.reconcile()
  const ms = performance.now() - t0
  const st = h.reconciler.status()
  const programmed = st.routes.filter((r) => r.programmed).length
  if (programmed !== 1000 || st.lastPass?.failed.length)
    throw new Error(`program_1000: ${programmed} routes, ${st.lastPass?.failed.length} failures`)
  progress(`program_1000: ${round(ms, 1)} ms (${st.lastPass?.changes} changes)`)
  return ms
}

const JOINS = Number(process.env.BENCH_JOINS ?? 10)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Watches a host namespace's routing table with `ip monitor route`: the times each
 * destination was added or replaced, as the kernel reports them (no polling delay).
 * Every event is kept: a subnet can be held, withdrawn and claimed again (a lost
 * competing claim at start-up), so a join is timed by the first event after its lease.
 */
function watchRoutes(td: Teardown, ns: string): Map<string, number[]> {
  const seen = new Map<string, number[]>()
  const mon = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] })
  td.teardown(() => void mon.kill())
  let buf = ''
  mon.stdout.on('data', (d: Buffer) => {
    const at = Date.now()
    buf += d.toString()
    const lines = buf.split('\n')
    buf = lines.pop() ?? ''
    for (const l of lines) {
      const dst = /^(\d+\.\d+\.\d+\.\d+\/\d+) .*proto 77/.exec(l)?.[1]
      if (dst) seen.set(dst, [...(seen.get(dst) ?? []), at])
    }
  })
  return seen
}

/**
 * routes: a real agent joins a running 9-host cluster (fresh identity: it claims a
 * subnet and writes its lease to its store); the lease travels by gossip, each other
 * agent's store watch triggers its reconciler, which programs the route. Measured from
 * the lease record's write time (its HLC wall clock: one machine, one clock) to the
 * route appearing in each host's kernel; JOINS joins, each agent stopped after its join.
 */
async function routesLatency(td: Teardown): Promise<number[]> {
  const name = `bor${process.pid.toString(36)}`.slice(0, 9)
  progress(`routes: fixture ${name}, 9 hosts, then ${JOINS} agents join one at a time`)
  td.teardown(() => void cluster('down', '--name', name))
  // the agents wait for each other before claiming: on 2 loaded cores nine take longer than the default 30 s
  cluster('up', '--name', name, '--hosts', '9', '--wait', '180')
  const c = loadCluster(name)
  if (!c) throw new Error('fixture state missing')
  const watched = c.hosts.map((h) => watchRoutes(td, h.ns))
  const samples: number[] = []
  for (let j = 0; j < JOINS; j++) {
    cluster('join', '--name', name, '--wait', '300')
    const joiner = loadCluster(name)?.hosts.at(-1)
    if (!joiner) throw new Error('joined host missing from the fixture state')
    const api = createClient(joiner.socket)
    const { self } = await api.call<{ self: { peerId: string; subnet?: string } }>('GET', '/v1/subnets')
    if (!self.subnet) throw new Error(`${joiner.name} holds no subnet after join`)
    const lease = await api.call<{ version: { wall: number } }>('GET', `/v1/kv/leases/${self.peerId}`)
    const programmed = (w: Map<string, number[]>) =>
      w.get(self.subnet as string)?.find((at) => at >= lease.version.wall)
    const deadline = Date.now() + 60_000
    while (watched.some((w) => programmed(w) === undefined) && Date.now() < deadline) await sleep(20)
    const times = watched.map(programmed)
    if (times.some((x) => x === undefined))
      throw new Error(`routes to ${self.subnet} missing on some hosts 60 s after its lease`)
    const lat = times.map((x) => (x as number) - lease.version.wall)
    samples.push(...lat)
    progress(`join ${j + 1}/${JOINS}: ${joiner.name} ${self.subnet}, max ${Math.round(Math.max(...lat))} ms`)
    cluster('stop', '--name', name, '--host', joiner.name)
  }
  progress(`routes: p50 ${round(median(samples), 1)} ms, p99 ${round(quantile(samples, 0.99), 1)} ms`)
  return samples
}

async function main(): Promise<void> {
  const td = new Teardown()
  const stop = () => void td.run().then(() => process.exit(130))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    const program_1000_ms = await program1000(td)
    const routes = await routesLatency(td)
    await td.run()
    const tp = await throughput(td)
    const u = median(tp.underlay)
    const v = median(tp.vxlan)
    const g = median(tp.hostgw)
    const w = median(tp.wireguard)
    const l = median(tp.limit)
    report('overlay', {
      runs: RUNS,
      seconds_per_run: SECONDS,
      underlay_gbps: round(u),
      vxlan_gbps: round(v),
      hostgw_gbps: round(g),
      vxlan_ratio: round(v / u),
      vxlan_limit_gbps: round(l),
      vxlan_limit_ratio: round(v / l),
      vxlan_limit_ctr_gbps: round(median(tp.limitCtr)),
      vxlan_limit_ctr_ratio: round(v / median(tp.limitCtr)),
      vxlan_limit_method:
        'kernel VXLAN made by hand between the same two host namespaces, same MTU, offloads as the kernel sets them; _ctr: the same with a namespace behind a bridge and veth on each side, no rules',
      underlay_jumbo_gbps: round(median(tp.underlayJumbo)),
      vxlan_limit_jumbo_gbps: round(median(tp.limitJumbo)),
      hostgw_ratio: round(g / u),
      wireguard_gbps: round(w),
      wireguard_ratio: round(w / u),
      wireguard_method: 'wireguard-go (userspace; no kernel wireguard link type here)',
      wireguard_cpu_s_per_gbit: round(median(tp.wgCpu)),
      wireguard_cpu_method:
        'user+system CPU of both hosts wireguard-go during the run / Gbit carried (kernel softirq not included)',
      routes_p50_ms: round(median(routes), 1),
      routes_p99_ms: round(quantile(routes, 0.99), 1),
      routes_samples: routes.length,
      routes_method: 'agent joins a 9-host fixture: lease record write → route in each kernel',
      program_1000_ms: round(program_1000_ms, 1),
    })
  } finally {
    await td.run()
  }
}

void main().catch((err) => {
  process.stderr.write(`bench/overlay: ${(err as Error).stack ?? err}\n`)
  process.exit(1)
})
