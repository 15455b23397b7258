// Bounded branch and bound over slot → host for small jobs, seeded with the
// heuristic's cost as the bound. Moves and swaps cannot repack a full zone
// (every step of the repack is infeasible or dearer), an exhaustive search
// can; within its node budget it proves the optimum, past it the best found
// so far (never worse than the heuristic's plan) stands.
import type { GroupModel } from './problem.js'
import type { PlacementState, Slot } from './state.js'

/** Slot-host evaluations one exact search may spend (~50 ms). */
export const EXACT_NODE_BUDGET = 300_000
/** Jobs larger than this (slots × widest candidate set, e.g. 12 slots on 8 hosts) are left to local search. */
export const EXACT_MAX_SIZE = 100

/**
 * Searches every feasible assignment of the placed slots that may move (same filters as
 * the heuristic); leaves `st` at the best one. Returns true if it found a
 * cheaper one than `st` held.
 */
export function exactSearch(st: PlacementState, groups: GroupModel[]): boolean {
  const slots = [...st.slots.keys()].filter((s) => (st.hostOf[s] as number) >= 0 && !st.fixed[s])
  let bestCost = st.totalNetworkCost()
  let best = Int32Array.from(st.hostOf)
  for (const s of slots) st.unplace(s)
  let nodes = 0
  let improved = false
  const lastHost = new Int32Array(groups.length).fill(-1)
  const dfs = (i: number, cost: number) => {
    if (i === slots.length) {
      if (cost < bestCost - 1e-9 * Math.max(1, bestCost)) {
        ;[bestCost, best, improved] = [cost, Int32Array.from(st.hostOf), true]
      }
      return
    }
    const s = slots[i] as number
    const g = groups[(st.slots[s] as Slot).group] as GroupModel
    // slots of a group are interchangeable: take hosts in non-decreasing candidate order within a group
    const floor = lastHost[g.index] as number
    for (let c = 0; c < g.candidates.length; c++) {
      if (c < floor || nodes >= EXACT_NODE_BUDGET) continue
      nodes++
      const h = g.candidates[c] as number
      if (st.check(g, h, false)) continue
      const add = st.networkCost(g, h)
      if (cost + add >= bestCost - 1e-9 * Math.max(1, bestCost)) continue
      const saved = lastHost[g.index] as number
      lastHost[g.index] = c
      st.place(s, h)
      dfs(i + 1, cost + add)
      st.unplace(s)
      lastHost[g.index] = saved
    }
  }
  dfs(0, 0)
  for (const s of slots) st.place(s, best[s] as number)
  return improved
}
