// Score terms, each normalised (Nomad's rank iterators, Kubernetes' Score
// plugins): higher is better, balance/network/spread in [0, 1], affinity in
// [-1, 1]. The total is their weighted mean over the terms that apply.
import type { GroupModel } from './problem.js'
import type { PlacementState } from './state.js'

export const WEIGHTS = { network: 2, balance: 1, affinity: 1, spread: 1 } as const

/** Utilisation after placing the slot (mean of cpu and memory): spread prefers the emptiest host, binpack the fullest. */
export function balanceScore(st: PlacementState, g: GroupModel, h: number, binpack: boolean): number {
  const cap = (st.problem.hosts[h] as { capacity: { cpu: number; memoryMb: number } }).capacity
  const uc = cap.cpu > 0 ? 1 - ((st.freeCpu[h] as number) - g.cpu) / cap.cpu : 1
  const um = cap.memoryMb > 0 ? 1 - ((st.freeMem[h] as number) - g.memoryMb) / cap.memoryMb : 1
  const u = Math.min(1, Math.max(0, (uc + um) / 2))
  return binpack ? u : 1 - u
}

/** Weighted share of the affinities the host meets, in [-1, 1]; undefined when the group declares none. */
export function affinityScore(st: PlacementState, g: GroupModel, h: number): number | undefined {
  if (!g.affinityWeight) return undefined
  let a = g.affinity ? (g.affinity[h] as number) : 0
  for (const j of g.jobAffinities) {
    if (((st.groupCount[j.group] as Int32Array)[h] as number) > 0) a += j.weight / g.affinityWeight
  }
  return a
}

/** Per spread term, the counts the score compares with, computed once per slot. */
export function spreadBounds(st: PlacementState, g: GroupModel): { min: number; max: number }[] {
  return g.spreads.map((s) => {
    const m = st.counts[s.counter] as Map<string, number>
    let min = Number.POSITIVE_INFINITY
    let max = 0
    for (const v of s.values) {
      const c = m.get(v) ?? 0
      if (c < min) min = c
      if (c > max) max = c
    }
    return { min: Number.isFinite(min) ? min : 0, max }
  })
}

/**
 * With targets: how far the host's value is below its target share (1 = none
 * placed yet, 0.5 = at target, 0 = twice over or no target). Without: 1 for
 * the least used value, 0 for the most used. A host without the attribute
 * scores 0.
 */
export function spreadScore(
  st: PlacementState,
  g: GroupModel,
  h: number,
  bounds: { min: number; max: number }[],
): number | undefined {
  if (!g.spreads.length) return undefined
  let sum = 0
  let weights = 0
  g.spreads.forEach((s, i) => {
    weights += s.weight
    const v = s.valueAt[h]
    if (v === undefined) return
    const c = (st.counts[s.counter] as Map<string, number>).get(v) ?? 0
    let score: number
    if (s.targets) {
      const desired = ((s.targets.get(v) ?? 0) / 100) * g.count
      score = desired > 0 ? (Math.max(-1, Math.min(1, (desired - c) / desired)) + 1) / 2 : 0
    } else {
      const b = bounds[i] as { min: number; max: number }
      score = b.max === b.min ? 1 : (b.max - c) / (b.max - b.min)
    }
    sum += s.weight * score
  })
  return sum / weights
}
