// bench/overlay (contract: ../shared/BENCH.md). In one run:
//  1. throughput: iperf3 container-to-container across two hosts over vxlan
//     and over host-gw (two fixture clusters), beside host-to-host over the
//     underlay, interleaved A B C A B C so machine noise hits all alike;
//  2. program_1000_ms: one host programs 1,000 remote leases from scratch;
//  3. routes_p99_ms: 9 hosts see a 10th host's lease appear (as the store's
//     watch delivers it) until each has programmed its route; 10 joins.
// 2 and 3 run the real Reconciler against the kernel in throwaway namespaces
// (the datapath part of a join; store propagation is bench/converge's).
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { backendFor } from '../src/datapath/backend/index.js'
import type { LeaseValue } from '../src/store/records.js'
import { hostSubnet, leaseRecord, topology } from '../test/integration/datapath/topology.js'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'

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

function iperf(name: string, where: string[], target: string, port = 5201): number {
  const out = cluster(
    'exec',
    '--name',
    name,
    ...where,
    '--',
    'iperf3',
    '-c',
    target,
    '-p',
    String(port),
    '-t',
    String(SECONDS),
    '-J',
  )
  const r = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }
  return r.end.sum_received.bits_per_second / 1e9
}

async function throughput(td: Teardown) {
  const vx = fixture(td, 'bovx', 'vxlan')
  const hg = fixture(td, 'bohg', 'host-gw')
  // an underlay server next to the vxlan cluster's container server
  const srv = spawn(CLUSTER, ['exec', '--name', 'bovx', '--host', 'h2', '--', 'iperf3', '-s', '-p', '5202'], {
    stdio: 'ignore',
  })
  td.teardown(() => void srv.kill())
  await new Promise((r) => setTimeout(r, 500))
  const underlay: number[] = []
  const vxlan: number[] = []
  const hostgw: number[] = []
  for (let i = 0; i < RUNS; i++) {
    underlay.push(iperf('bovx', ['--host', 'h1'], '192.0.2.12', 5202))
    vxlan.push(iperf('bovx', ['--ctr', 'cli'], vx.serverIp))
    hostgw.push(iperf('bohg', ['--ctr', 'cli'], hg.serverIp))
    progress(
      `run ${i + 1}/${RUNS}: underlay ${round(underlay[i] as number)} vxlan ${round(vxlan[i] as number)} host-gw ${round(hostgw[i] as number)} Gbit/s`,
    )
  }
  return { underlay, vxlan, hostgw }
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

async function routesLatency(td: Teardown): Promise<number[]> {
  progress('routes: 9 hosts watch a 10th host join, 10 times')
  const topo = await topology(td, {
    hosts: 9,
    network: { Backend: { Type: 'vxlan' } },
    firewall: 'nftables',
    intervalMs: 600_000,
    endpoints: false,
  })
  const backend = backendFor('vxlan')
  const samples: number[] = []
  for (let j = 0; j < 10; j++) {
    const peerId = `joiner${j}`
    const subnet = hostSubnet(topo.network, 50 + j)
    const value: LeaseValue = {
      subnet,
      publicIp: `192.0.2.${100 + j}`,
      hostname: `j${j}`,
      backend: backend.leaseData(topo.network, peerId),
      claimedAt: 1,
    }
    const t0 = performance.now()
    topo.records.set(peerId, leaseRecord(peerId, value, 600_000))
    // what the store watch does on every host: trigger (debounced) passes
    for (const h of topo.hosts) h.reconciler.trigger()
    const pending = new Set(topo.hosts)
    while (pending.size) {
      for (const h of pending) {
        if (h.reconciler.status().routes.some((r) => r.dst === subnet && r.programmed)) {
          samples.push(performance.now() - t0)
          pending.delete(h)
        }
      }
      await new Promise((r) => setTimeout(r, 2))
    }
    topo.records.delete(peerId)
    for (const h of topo.hosts) await h.reconciler.reconcile()
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
    report('overlay', {
      runs: RUNS,
      seconds_per_run: SECONDS,
      underlay_gbps: round(u),
      vxlan_gbps: round(v),
      hostgw_gbps: round(g),
      vxlan_ratio: round(v / u),
      hostgw_ratio: round(g / u),
      routes_p50_ms: round(median(routes), 1),
      routes_p99_ms: round(quantile(routes, 0.99), 1),
      routes_samples: routes.length,
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
