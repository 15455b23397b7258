// The state of one placement run: where each slot is, what every host has
// left, and the counts the dynamic filters and scores read. place/unplace
// keep all of it consistent, so the greedy pass and local search share one
// notion of feasibility and cost.
import type { GroupModel, Problem } from './problem.js'

export interface Slot {
  group: number
  index: number
}

export class PlacementState {
  readonly hostOf: Int32Array
  /** 1 for a slot kept where it runs (PlacementInput.keep): placed first, never moved */
  readonly fixed: Uint8Array
  readonly freeCpu: Float64Array
  readonly freeMem: Float64Array
  /** per group: slots on each host */
  readonly groupCount: Int32Array[]
  /** per group: hosts with at least one of its slots (unordered) */
  readonly groupHosts: number[][]
  /** slots of the job per host */
  readonly jobCount: Int32Array
  /** distinct_property / spread counters: attribute value → slots */
  readonly counts: Map<string, number>[]

  constructor(
    readonly problem: Problem,
    readonly slots: Slot[],
    readonly rtt: (a: number, b: number) => number,
  ) {
    const n = problem.hosts.length
    this.hostOf = new Int32Array(slots.length).fill(-1)
    this.fixed = new Uint8Array(slots.length)
    this.freeCpu = new Float64Array(n)
    this.freeMem = new Float64Array(n)
    problem.hosts.forEach((h, i) => {
      this.freeCpu[i] = h.capacity.cpu - h.used.cpu
      this.freeMem[i] = h.capacity.memoryMb - h.used.memoryMb
    })
    this.groupCount = problem.groups.map(() => new Int32Array(n))
    this.groupHosts = problem.groups.map(() => [])
    this.jobCount = new Int32Array(n)
    this.counts = Array.from({ length: problem.counters }, () => new Map())
  }

  private bump(g: GroupModel, h: number, d: 1 | -1): void {
    const gc = this.groupCount[g.index] as Int32Array
    gc[h] = (gc[h] as number) + d
    const hosts = this.groupHosts[g.index] as number[]
    if (d === 1 && gc[h] === 1) hosts.push(h)
    if (d === -1 && gc[h] === 0) hosts.splice(hosts.indexOf(h), 1)
    this.jobCount[h] = (this.jobCount[h] as number) + d
    this.freeCpu[h] = (this.freeCpu[h] as number) - d * g.cpu
    this.freeMem[h] = (this.freeMem[h] as number) - d * g.memoryMb
    for (const p of g.distinctProperties) this.count(p, h, d)
    for (const p of g.spreads) this.count(p, h, d)
  }

  private count(p: { valueAt: (string | undefined)[]; counter: number }, h: number, d: 1 | -1): void {
    const v = p.valueAt[h]
    if (v === undefined) return
    const m = this.counts[p.counter] as Map<string, number>
    m.set(v, (m.get(v) ?? 0) + d)
  }

  place(s: number, h: number): void {
    const slot = this.slots[s] as Slot
    this.hostOf[s] = h
    this.bump(this.problem.groups[slot.group] as GroupModel, h, 1)
  }

  unplace(s: number): number {
    const slot = this.slots[s] as Slot
    const h = this.hostOf[s] as number
    this.hostOf[s] = -1
    this.bump(this.problem.groups[slot.group] as GroupModel, h, -1)
    return h
  }

  /** distinct_property counts in the constraint's scope: the job's slots or the group's */
  private propertyCount(p: GroupModel['distinctProperties'][number], value: string): number {
    if (p.scope === 'group') return (this.counts[p.counter] as Map<string, number>).get(value) ?? 0
    let n = 0
    // job scope: job constraints are copied into every group, so each group counts its own slots
    for (const other of this.problem.groups) {
      for (const q of other.distinctProperties) {
        if (q.attribute === p.attribute && q.scope === 'job')
          n += (this.counts[q.counter] as Map<string, number>).get(value) ?? 0
      }
    }
    return n
  }

  /**
   * The dynamic filter a group's slot fails on host h (undefined: fits), with
   * the reason when `why`. The static filters ran in compileProblem.
   */
  check(g: GroupModel, h: number, why: boolean): [string, string | undefined] | undefined {
    if ((this.freeCpu[h] as number) < g.cpu) {
      return [
        'capacity',
        why ? `cpu: needs ${g.cpu}m, ${this.freeCpu[h]}m free after this job's slots` : undefined,
      ]
    }
    if ((this.freeMem[h] as number) < g.memoryMb) {
      return [
        'capacity',
        why
          ? `memory: needs ${g.memoryMb} MiB, ${this.freeMem[h]} MiB free after this job's slots`
          : undefined,
      ]
    }
    if (g.distinctHosts === 'job' && (this.jobCount[h] as number) > 0) {
      return ['distinct_hosts', why ? 'already runs a slot of this job' : undefined]
    }
    if (g.distinctHosts === 'group' && ((this.groupCount[g.index] as Int32Array)[h] as number) > 0) {
      return ['distinct_hosts', why ? 'already runs a slot of this group' : undefined]
    }
    for (const p of g.distinctProperties) {
      const v = p.valueAt[h]
      if (v === undefined) return ['distinct_property', why ? `has no ${p.attribute}` : undefined]
      const n = this.propertyCount(p, v)
      if (n >= p.limit) {
        return [
          'distinct_property',
          why ? `${p.attribute}=${v} already holds ${n} (limit ${p.limit})` : undefined,
        ]
      }
    }
    for (const a of g.antiGroups) {
      if (((this.groupCount[a] as Int32Array)[h] as number) > 0) {
        return ['anti-affinity', why ? `runs a slot of group ${this.problem.groups[a]?.name}` : undefined]
      }
    }
    if (g.ports.length) {
      for (const other of this.problem.groups) {
        if (!other.ports.length || ((this.groupCount[other.index] as Int32Array)[h] as number) === 0) continue
        const clash = g.ports.find((p) => other.ports.includes(p))
        if (clash)
          return ['ports', why ? `host port ${clash} taken by a slot of group ${other.name}` : undefined]
      }
    }
    for (const e of g.edges) {
      if (e.maxRttMs === undefined) continue
      for (const p of this.groupHosts[e.group] as number[]) {
        const r = this.rtt(h, p)
        if (r > e.maxRttMs) {
          const other = this.problem.groups[e.group]?.name
          return [
            'max-rtt',
            why ? `${r.toFixed(2)} ms to a slot of ${other}, more than ${e.maxRttMs} ms` : undefined,
          ]
        }
      }
    }
    for (const e of g.external) {
      if (e.maxRttMs === undefined) continue
      if (!e.hosts.some((p) => this.rtt(h, p) <= (e.maxRttMs as number))) {
        return ['max-rtt', why ? `no instance of ${e.service} within ${e.maxRttMs} ms` : undefined]
      }
    }
    return undefined
  }

  /** Σ pair weight × RTT from host h to the placed partners of a slot of group g. */
  networkCost(g: GroupModel, h: number): number {
    let cost = 0
    for (const e of g.edges) {
      const gc = this.groupCount[e.group] as Int32Array
      let sum = 0
      for (const p of this.groupHosts[e.group] as number[]) sum += (gc[p] as number) * this.rtt(h, p)
      cost += e.pairWeight * sum
    }
    for (const e of g.external) {
      let sum = 0
      for (const p of e.hosts) sum += this.rtt(h, p)
      cost += e.pairWeight * sum
    }
    return cost
  }

  /** The network cost of the whole placement (each talking slot pair once). */
  totalNetworkCost(): number {
    let twice = 0
    let external = 0
    for (let s = 0; s < this.slots.length; s++) {
      const h = this.hostOf[s] as number
      if (h < 0) continue
      const g = this.problem.groups[(this.slots[s] as Slot).group] as GroupModel
      const external0 = g.external.reduce(
        (c, e) => c + e.pairWeight * e.hosts.reduce((x, p) => x + this.rtt(h, p), 0),
        0,
      )
      external += external0
      twice += this.networkCost(g, h) - external0
    }
    return twice / 2 + external
  }
}
