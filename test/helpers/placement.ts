// Hosts, jobs and small placement instances shared by the scheduler's unit
// tests and bench/scheduler, with an exhaustive optimum and a cost function of
// their own (not the solver's), so both can measure the solver against them.
import { place } from '../../src/scheduler/placement/solver.js'
import type { HostView, Plan } from '../../src/scheduler/placement/types.js'
import type { GroupSpec, JobSpec } from '../../src/scheduler/spec.js'

export interface HostOpts {
  zone?: string
  labels?: Record<string, string>
  cpu?: number
  memoryMb?: number
  usedCpu?: number
  alive?: boolean
  usedPorts?: string[]
}

export function host(name: string, o: HostOpts = {}): HostView {
  return {
    id: `peer-${name}`,
    name,
    address: `192.0.2.${name.replace(/\D/g, '') || '1'}`,
    alive: o.alive ?? true,
    labels: { ...(o.zone ? { zone: o.zone } : {}), ...o.labels },
    capacity: { cpu: o.cpu ?? 4000, memoryMb: o.memoryMb ?? 8192 },
    used: { cpu: o.usedCpu ?? 0, memoryMb: 0 },
    usedPorts: o.usedPorts,
  }
}

export function group(name: string, count: number, extra: Partial<GroupSpec> = {}, cpu = 100): GroupSpec {
  return {
    name,
    count,
    tasks: [{ name, driver: 'exec', config: { command: ['true'] }, resources: { cpu, memoryMb: 64 } }],
    service: { name },
    ...extra,
  }
}

export const job = (groups: GroupSpec[], extra: Partial<JobSpec> = {}): JobSpec => ({
  name: 'j',
  type: 'service',
  groups,
  ...extra,
})

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export interface Instance {
  hosts: HostView[]
  groups: GroupSpec[]
  rtt: number[][]
  edges: { a: number; b: number; w: number }[]
}

export function smallInstance(seed: number): Instance {
  const rnd = mulberry32(seed)
  const nHosts = 6
  // hosts on a plane in 2-3 zones: RTT = distance, same host 0
  const zones = Array.from({ length: 2 + Math.floor(rnd() * 2) }, () => [rnd() * 40, rnd() * 40] as const)
  const pos = Array.from({ length: nHosts }, (_, i) => {
    const z = zones[i % zones.length] as readonly [number, number]
    return [z[0] + rnd() * 2, z[1] + rnd() * 2] as const
  })
  const rtt = pos.map((p, i) => pos.map((q, j) => (i === j ? 0 : Math.hypot(p[0] - q[0], p[1] - q[1]) + 0.2)))
  const hosts = pos.map((_, i) => host(`h${i}`, { cpu: 1000 + Math.floor(rnd() * 3) * 500 }))
  const nGroups = 3 + Math.floor(rnd() * 6) // 3..8
  const counts = Array.from({ length: nGroups }, () => 1)
  for (let extra = 8 - nGroups; extra > 0 && rnd() < 0.7; extra--) {
    const g = Math.floor(rnd() * nGroups)
    counts[g] = (counts[g] as number) + 1
  }
  const edges: Instance['edges'] = []
  for (let b = 1; b < nGroups; b++) {
    edges.push({ a: Math.floor(rnd() * b), b, w: 1 + Math.floor(rnd() * 10) })
    if (rnd() < 0.4) edges.push({ a: Math.floor(rnd() * b), b, w: 1 + Math.floor(rnd() * 10) })
  }
  const groups = counts.map((c, g) =>
    group(
      `g${g}`,
      c,
      { talksTo: edges.filter((e) => e.b === g).map((e) => ({ service: `g${e.a}`, weight: e.w })) },
      300 + Math.floor(rnd() * 5) * 100,
    ),
  )
  return { hosts, groups, rtt, edges }
}

/** The cost of an assignment slot→host, by the definition in docs/jobs.md. */
export function assignmentCost(inst: Instance, hostsOfGroup: number[][]): number {
  let c = 0
  for (const e of inst.edges) {
    const A = hostsOfGroup[e.a] as number[]
    const B = hostsOfGroup[e.b] as number[]
    let sum = 0
    for (const x of A) for (const y of B) sum += (inst.rtt[x] as number[])[y] as number
    c += (e.w / (A.length * B.length)) * sum
  }
  return c
}

export function exhaustiveOptimum(inst: Instance): number {
  const slots = inst.groups.flatMap((g, gi) => Array.from({ length: g.count }, () => gi))
  const demand = inst.groups.map((g) => g.tasks[0]?.resources.cpu as number)
  const free = inst.hosts.map((h) => h.capacity.cpu)
  const assign: number[][] = inst.groups.map(() => [])
  let best = Number.POSITIVE_INFINITY
  const dfs = (s: number) => {
    if (s === slots.length) {
      best = Math.min(best, assignmentCost(inst, assign))
      return
    }
    const g = slots[s] as number
    const list = assign[g] as number[]
    // slots of one group are interchangeable: non-decreasing hosts within a group
    const from = list.length ? (list[list.length - 1] as number) : 0
    for (let h = from; h < inst.hosts.length; h++) {
      if ((free[h] as number) < (demand[g] as number)) continue
      free[h] = (free[h] as number) - (demand[g] as number)
      list.push(h)
      dfs(s + 1)
      list.pop()
      free[h] = (free[h] as number) + (demand[g] as number)
    }
  }
  dfs(0)
  return best
}

/** The instance's RTT table as placement's `rttMs` option (hosts are named h<index>). */
export const instanceRtt =
  (inst: Instance) =>
  (a: HostView, b: HostView): number =>
    (inst.rtt[Number(a.name.slice(1))] as number[])[Number(b.name.slice(1))] as number

/** Places an instance (with or without the exact stage) and costs the result with assignmentCost. */
export function placeInstance(inst: Instance, exact: boolean): { plan: Plan; cost: number } {
  const plan = place({
    job: job(inst.groups),
    hosts: inst.hosts,
    options: { exact, rttMs: instanceRtt(inst) },
  })
  const byGroup = inst.groups.map((g) =>
    plan.placements.filter((p) => p.group === g.name).map((p) => Number(p.hostName.slice(1))),
  )
  return { plan, cost: assignmentCost(inst, byGroup) }
}

/** got vs the optimum: 0.03 = 3 % dearer (an optimum of 0 makes the gap the cost itself) */
export const gapOf = (got: number, opt: number) => (opt > 0 ? got / opt - 1 : got)
