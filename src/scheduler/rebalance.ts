// Pure: the network cost of where a job's allocations run now, the moves towards a fresh plan that
// lower it and the cost after, with each group's host verdicts (`plexctl job explain` and
// `job rebalance`). A rebalance that is carried out marks the moves (allocation, destination) in the
// job record; the owner replaces them as it replaces those of a drained host (beside the old one,
// health-gated, at most `update.maxParallel` a group at once), on the planned host while it has room.
import { givenBack } from './owner-plan.js'
import { place } from './placement/solver.js'
import type { ExistingAllocation, HostView, MeasuredTraffic, Plan } from './placement/types.js'
import type { Resources } from './records.js'
import type { JobSpec } from './spec.js'

/** an allocation of the job that holds its slot now */
export interface RunningSlot {
  id: string
  group: string
  slot: string
  host: string
  hostName: string
  resources: Resources
}

export interface RebalanceInput {
  job: JobSpec
  hosts: HostView[]
  /** other jobs' allocations */
  others: ExistingAllocation[]
  traffic: readonly MeasuredTraffic[]
  running: RunningSlot[]
}

export interface Move {
  id: string
  group: string
  slot: string
  /** host names */
  from: string
  to: string
  /** the destination's peer id (what the owner is told) */
  toPeer: string
}

export interface Rebalance {
  /** Σ pair weight × RTT of the placement now (ms) */
  costNow: number
  /** the same after the moves */
  costAfter: number
  /** the job placed afresh; its groups' verdicts are each group's with the others where they run now */
  plan: Plan
  /** the allocations to move for costAfter; none when it would not lower the cost by MIN_GAIN */
  moves: Move[]
}

/** a rebalance that saves less than this share of the cost moves nothing (restarts are not free) */
export const MIN_GAIN = 0.05

/**
 * Moves from where the job runs to a fresh plan of it: per group, slots on hosts that hold more of
 * the group than the plan keeps there go to hosts the plan gives more. Then each move whose undoing
 * gives back less than MIN_GAIN of the saving is undone (the plan may put a slot elsewhere at nearly
 * the same cost: a restart for nothing). The owner carries the moves out to their planned hosts.
 */
export function rebalance(input: RebalanceInput): Rebalance {
  // as if the job ran nowhere: every placement below keeps (counts) the slots it evaluates
  const hosts = givenBack(input.hosts, input.running)
  const base = { job: input.job, hosts, allocations: input.others, traffic: input.traffic }
  const costWith = (rs: RunningSlot[]) =>
    place({
      ...base,
      options: { explain: false, exact: false },
      keep: rs.map((r) => ({ group: r.group, index: Number(r.slot), host: r.host })),
    }).networkCost
  const costNow = costWith(input.running)
  // each group's verdicts as where the others run now makes them: why its slots are where they are
  const fresh = place(base)
  const groups = input.job.groups.map((g, i) => {
    const others = input.running.filter((r) => r.group !== g.name)
    const p = place({
      ...base,
      keep: others.map((r) => ({ group: r.group, index: Number(r.slot), host: r.host })),
    })
    return p.groups.find((x) => x.group === g.name) ?? (fresh.groups[i] as Plan['groups'][number])
  })
  const plan = { ...fresh, groups }
  const none = { costNow, costAfter: costNow, plan, moves: [] }
  if (input.job.type === 'system' || plan.failures.length) return none
  const byId = new Map(input.hosts.map((h) => [h.id, h]))
  let moves: Move[] = []
  for (const g of input.job.groups) {
    const mine = input.running
      .filter((r) => r.group === g.name)
      .sort((a, b) => Number(a.slot) - Number(b.slot))
    const spare = new Map<string, number>()
    for (const p of plan.placements) if (p.group === g.name) spare.set(p.host, (spare.get(p.host) ?? 0) + 1)
    const leaving: RunningSlot[] = []
    for (const r of mine) {
      const n = spare.get(r.host) ?? 0
      if (n > 0) spare.set(r.host, n - 1)
      else leaving.push(r)
    }
    const free = [...spare].flatMap(([h, n]) => Array.from({ length: n }, () => h))
    for (const r of leaving) {
      const to = free.shift()
      if (to !== undefined)
        moves.push({
          id: r.id,
          group: g.name,
          slot: r.slot,
          from: r.hostName,
          to: byId.get(to)?.name ?? to,
          toPeer: to,
        })
    }
  }
  const apply = (ms: Move[]) =>
    input.running.map((r) => {
      const m = ms.find((x) => x.id === r.id)
      return m ? { ...r, host: m.toPeer, hostName: m.to } : r
    })
  let cost = costWith(apply(moves))
  for (const m of [...moves]) {
    const without = moves.filter((x) => x !== m)
    const c = costWith(apply(without))
    if (c - cost <= MIN_GAIN * (costNow - cost)) [moves, cost] = [without, c]
  }
  if (!moves.length || cost > costNow * (1 - MIN_GAIN)) return none
  return { costNow, costAfter: cost, plan, moves }
}
