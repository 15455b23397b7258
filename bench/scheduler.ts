// bench/scheduler (contract: ../shared/BENCH.md). Pure placement, no agents:
// 1. throughput: 10,000 allocations (1,000 jobs of two 5-slot groups with
//    constraints, the second talking to the first) on 1,000 simulated hosts
//    in 10 zones, hosts' usage growing as jobs land;
// 2. network cost of a generated microservice graph (40 services, ~100
//    allocations) on 1,000 hosts in 10 zones: Plexus vs plain spread
//    placement (the same scheduler without the network term) vs random
//    feasible hosts, cost = Σ traffic weight × estimated RTT;
// 3. optimality gap on small instances (≤ 8 allocations on 6 hosts) against
//    an exhaustive optimum, with and without the exact stage.
import { type Coordinate, distance } from '../src/cluster/vivaldi.js'
import { place } from '../src/scheduler/placement/solver.js'
import type { HostView } from '../src/scheduler/placement/types.js'
import type { GroupSpec, JobSpec } from '../src/scheduler/spec.js'
import {
  exhaustiveOptimum,
  gapOf,
  mulberry32,
  placeInstance,
  smallInstance,
} from '../test/helpers/placement.js'
import { median, progress, report, round } from './lib/report.js'

const HOSTS = 1000
const ZONES = 10
const RUNS = Number(process.env.BENCH_RUNS ?? 3)

/** Hosts in zones on a plane: zone centres 5–60 ms apart, hosts within 0.1–0.4 ms of their centre. */
function cluster(seed: number, usedShare: () => number): HostView[] {
  const rnd = mulberry32(seed)
  const centres = Array.from({ length: ZONES }, () => [rnd() * 0.05, rnd() * 0.05])
  return Array.from({ length: HOSTS }, (_, i) => {
    const z = i % ZONES
    const c = centres[z] as number[]
    const vec = new Array(8).fill(0)
    vec[0] = (c[0] as number) + (rnd() - 0.5) * 0.0003
    vec[1] = (c[1] as number) + (rnd() - 0.5) * 0.0003
    const coordinate: Coordinate = { vec, height: 0.00005, error: 0.1, adjustment: 0 }
    const cpu = 16_000
    return {
      id: `peer-${i.toString(36).padStart(4, '0')}`,
      name: `h${i}`,
      address: `10.${z}.${i >> 8}.${i & 255}`,
      alive: true,
      labels: {
        zone: `z${z}`,
        rack: `r${Math.floor(i / 20)}`,
        disk: Math.floor(i / ZONES) % 2 ? 'ssd' : 'hdd',
      },
      capacity: { cpu, memoryMb: 65_536 },
      used: { cpu: Math.floor(cpu * usedShare()), memoryMb: 0 },
      coordinate,
    }
  })
}

const task = (name: string, cpu: number) => ({
  name,
  driver: 'exec' as const,
  config: { command: ['sleep', '3600'] },
  resources: { cpu, memoryMb: 256 },
})

function throughputJob(i: number, rnd: () => number): JobSpec {
  const zones = [0, 1, 2].map(() => `z${Math.floor(rnd() * ZONES)}`)
  return {
    name: `job-${i}`,
    type: 'service',
    groups: [
      {
        name: 'data',
        count: 5,
        service: { name: `data-${i}` },
        constraints: [
          { operator: 'in', attribute: 'zone', values: zones },
          { operator: '=', attribute: 'labels.disk', value: 'ssd' },
          { operator: 'distinct_hosts' },
        ],
        tasks: [task('data', 200 + Math.floor(rnd() * 300))],
      },
      {
        name: 'app',
        count: 5,
        talksTo: [{ service: `data-${i}`, weight: 5 }],
        constraints: [
          { operator: 'regexp', attribute: 'labels.rack', value: '[02468]$' },
          { operator: 'distinct_property', attribute: 'labels.rack', limit: 2 },
        ],
        tasks: [task('app', 100 + Math.floor(rnd() * 200))],
      },
    ],
  }
}

/** Places 1,000 jobs one after another; hosts' usage grows with each (as admitted allocations). */
function throughput(seed: number): number {
  const hosts = cluster(seed, () => 0)
  const byId = new Map(hosts.map((h) => [h.id, h]))
  const rnd = mulberry32(seed + 1)
  const jobs = Array.from({ length: 1000 }, (_, i) => throughputJob(i, rnd))
  let placed = 0
  const t0 = process.hrtime.bigint()
  for (const job of jobs) {
    const plan = place({ job, hosts, options: { explain: false } })
    for (const p of plan.placements) {
      const h = byId.get(p.host) as HostView
      const g = job.groups.find((x) => x.name === p.group) as GroupSpec
      h.used.cpu += g.tasks[0]?.resources.cpu as number
      h.used.memoryMb += g.tasks[0]?.resources.memoryMb as number
    }
    placed += plan.placements.length
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (placed !== 10_000) throw new Error(`only ${placed} of 10000 allocations placed`)
  return placed / s
}

/** A microservice graph: each service calls 1–3 earlier ones (toward the data tier), weights 1–20. */
function microservices(seed: number): JobSpec {
  const rnd = mulberry32(seed)
  const n = 40
  const groups: GroupSpec[] = Array.from({ length: n }, (_, i) => {
    const calls = new Set<number>()
    if (i > 0) for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) calls.add(Math.floor(rnd() * i))
    return {
      name: `s${i}`,
      count: 1 + Math.floor(rnd() * 4),
      service: { name: `s${i}` },
      talksTo: [...calls].map((c) => ({ service: `s${c}`, weight: 1 + Math.floor(rnd() * 20) })),
      tasks: [task(`s${i}`, 200 + Math.floor(rnd() * 800))],
    }
  })
  return { name: `shop-${seed}`, type: 'service', groups }
}

/** Σ over talking group pairs of w / (A·B) × Σ RTT between their allocations' hosts (ms), from the coordinates. */
function trafficCost(job: JobSpec, hosts: HostView[], hostOf: Map<string, string[]>): number {
  const byId = new Map(hosts.map((h) => [h.id, h]))
  const rtt = (a: string, b: string) =>
    a === b
      ? 0
      : distance(byId.get(a)?.coordinate as Coordinate, byId.get(b)?.coordinate as Coordinate) * 1000
  let cost = 0
  for (const g of job.groups) {
    for (const t of g.talksTo ?? []) {
      const A = hostOf.get(g.name) ?? []
      const B = hostOf.get(t.service) ?? []
      let sum = 0
      for (const a of A) for (const b of B) sum += rtt(a, b)
      cost += ((t.weight ?? 1) / (A.length * B.length)) * sum
    }
  }
  return cost
}

function randomPlacement(job: JobSpec, hosts: HostView[], rnd: () => number): Map<string, string[]> {
  const free = hosts.map((h) => h.capacity.cpu - h.used.cpu)
  const out = new Map<string, string[]>()
  for (const g of job.groups) {
    const cpu = g.tasks[0]?.resources.cpu as number
    const list: string[] = []
    for (let i = 0; i < g.count; i++) {
      let h: number
      do h = Math.floor(rnd() * hosts.length)
      while ((free[h] as number) < cpu)
      free[h] = (free[h] as number) - cpu
      list.push(hosts[h]?.id as string)
    }
    out.set(g.name, list)
  }
  return out
}

function planned(job: JobSpec, hosts: HostView[], network: boolean): Map<string, string[]> {
  const plan = place({ job, hosts, options: { explain: false, network } })
  if (plan.failures.length) throw new Error(`${plan.failures.length} allocations not placed`)
  const out = new Map<string, string[]>()
  for (const p of plan.placements) out.set(p.group, [...(out.get(p.group) ?? []), p.host])
  return out
}

function main(): void {
  const rates: number[] = []
  for (let r = 0; r < RUNS; r++) {
    rates.push(throughput(100 + r))
    progress(`throughput run ${r + 1}/${RUNS}: ${Math.round(rates[r] as number)} placements/s`)
  }

  const costs = { plexus: [] as number[], spread: [] as number[], random: [] as number[] }
  const solveMs: number[] = []
  for (let r = 0; r < RUNS * 2; r++) {
    const hosts = cluster(200 + r, mulberry32(300 + r))
    const job = microservices(400 + r)
    const t0 = performance.now()
    costs.plexus.push(trafficCost(job, hosts, planned(job, hosts, true)))
    solveMs.push(performance.now() - t0)
    costs.spread.push(trafficCost(job, hosts, planned(job, hosts, false)))
    costs.random.push(trafficCost(job, hosts, randomPlacement(job, hosts, mulberry32(500 + r))))
    progress(
      `graph ${r + 1}: plexus ${costs.plexus[r]?.toFixed(1)}, spread ${costs.spread[r]?.toFixed(1)}, random ${costs.random[r]?.toFixed(1)} (weighted ms), solved in ${Math.round(solveMs[r] as number)} ms`,
    )
  }

  const gaps: number[] = []
  const heuristicGaps: number[] = []
  for (let seed = 1001; seed <= 1040; seed++) {
    const inst = smallInstance(seed)
    const opt = exhaustiveOptimum(inst)
    gaps.push(gapOf(placeInstance(inst, true).cost, opt))
    heuristicGaps.push(gapOf(placeInstance(inst, false).cost, opt))
  }
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length
  progress(
    `small instances: gap mean ${mean(gaps).toFixed(4)}, local search alone mean ${mean(heuristicGaps).toFixed(4)}`,
  )

  report('scheduler', {
    runs: RUNS,
    placements_per_s: Math.round(median(rates)),
    hosts: HOSTS,
    zones: ZONES,
    cost_plexus_ms: round(median(costs.plexus)),
    cost_spread_ms: round(median(costs.spread)),
    cost_random_ms: round(median(costs.random)),
    cost_ratio_vs_spread: round(median(costs.plexus) / median(costs.spread)),
    cost_ratio_vs_random: round(median(costs.plexus) / median(costs.random)),
    graph_solve_ms: Math.round(median(solveMs)),
    optimality_gap: round(mean(gaps), 4),
    optimality_gap_max: round(Math.max(...gaps), 4),
    heuristic_gap: round(mean(heuristicGaps), 4),
    heuristic_gap_max: round(Math.max(...heuristicGaps), 4),
    small_instances: gaps.length,
  })
}

main()
