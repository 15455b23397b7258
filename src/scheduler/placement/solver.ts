// Placement: (hosts, existing allocations, job) → plan. Groups are placed in
// dependency order (a group before the groups that talk to it, so the data
// tier lands first and its callers next to it), each slot greedily on the
// best-scoring feasible host; then local search moves single slots and swaps
// pairs of slots while that lowers the job's network cost, keeping every
// filter satisfied and no slot losing affinity or leaving its spread value.
// Deterministic: the same input gives the same plan.
import { hash32, rttModel } from './attributes.js'
import { EXACT_MAX_SIZE, exactSearch } from './exact.js'
import { compileProblem, type GroupModel, type Problem } from './problem.js'
import { affinityScore, balanceScore, spreadBounds, spreadScore, WEIGHTS } from './scores.js'
import { PlacementState, type Slot } from './state.js'
import type {
  HostVerdict,
  Placement,
  PlacementFailure,
  PlacementInput,
  Plan,
  ScoreBreakdown,
} from './types.js'

const MAX_PASSES = 16
const EPS = 1e-9

/** Callees before callers (Kahn on talksTo inside the job); a cycle is broken at its first group in spec order. */
export function dependencyOrder(problem: Problem): number[] {
  const { groups } = problem
  const calls = groups.map((g) => new Set((g.spec.talksTo ?? []).map((t) => t.service)))
  const calleesLeft = groups.map(
    (g) =>
      groups.filter(
        (o) => o !== g && (calls[g.index]?.has(o.name) || (o.service && calls[g.index]?.has(o.service))),
      ).length,
  )
  const order: number[] = []
  const done = new Set<number>()
  while (order.length < groups.length) {
    const ready = groups.find((g) => !done.has(g.index) && calleesLeft[g.index] === 0)
    const next =
      ready ??
      groups
        .filter((g) => !done.has(g.index))
        .reduce((a, b) => ((calleesLeft[b.index] as number) < (calleesLeft[a.index] as number) ? b : a))
    done.add(next.index)
    order.push(next.index)
    for (const g of groups) {
      if (
        !done.has(g.index) &&
        (calls[g.index]?.has(next.name) || (next.service && calls[g.index]?.has(next.service)))
      ) {
        calleesLeft[g.index] = (calleesLeft[g.index] as number) - 1
      }
    }
  }
  return order
}

/** Mixes two 32-bit hashes (murmur3 finaliser) for tie-breaking. */
function mix(a: number, b: number): number {
  let h = (a ^ b) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

interface Context {
  problem: Problem
  st: PlacementState
  binpack: boolean
  explain: boolean
  hostHash: Uint32Array
}

type Choice = { host: number } | { reason: string }

function filterSummary(counts: Map<string, { n: number; example?: string }>, total: number): string {
  const parts = [...counts].map(([f, { n, example }]) => `${f} ${n}${example ? ` (e.g. ${example})` : ''}`)
  return `no host fits (${total} hosts): ${parts.join(', ') || 'none known'}`
}

/** Scores every feasible host for one slot and picks the best (verdicts recorded when asked). */
function chooseHost(ctx: Context, s: number, verdicts?: HostVerdict[]): Choice {
  const { problem, st } = ctx
  const slot = st.slots[s] as Slot
  const g = problem.groups[slot.group] as GroupModel
  const feasible: number[] = []
  const costs: number[] = []
  const dynamic = new Map<string, { n: number; example?: string }>()
  const why = ctx.explain || verdicts !== undefined
  const hasNet = g.edges.length > 0 || g.external.length > 0
  for (const h of g.candidates) {
    const f = st.check(g, h, why)
    if (f) {
      const d = dynamic.get(f[0]) ?? { n: 0, example: f[1] }
      d.n++
      dynamic.set(f[0], d)
      if (verdicts) verdicts[h] = { ...(verdicts[h] as HostVerdict), filter: f[0], reason: f[1] }
      continue
    }
    feasible.push(h)
    costs.push(hasNet ? st.networkCost(g, h) : 0)
  }
  if (!feasible.length) {
    const counts = new Map<string, { n: number; example?: string }>()
    problem.hosts.forEach((_, h) => {
      const f = g.filterOf[h]
      if (!f) return
      const c = counts.get(f) ?? { n: 0, example: g.reasonOf[h] }
      c.n++
      counts.set(f, c)
    })
    for (const [f, d] of dynamic) {
      const c = counts.get(f)
      counts.set(f, c ? { n: c.n + d.n, example: c.example } : d)
    }
    return { reason: filterSummary(counts, problem.hosts.length) }
  }
  const minC = Math.min(...costs)
  const maxC = Math.max(...costs)
  const bounds = spreadBounds(st, g)
  const slotHash = hash32(`${problem.job.name}/${g.name}/${slot.index}`)
  let best = -1
  let bestTotal = Number.NEGATIVE_INFINITY
  let bestTie = 0
  feasible.forEach((h, i) => {
    const cost = costs[i] as number
    const network = hasNet ? (maxC > minC ? (maxC - cost) / (maxC - minC) : 1) : undefined
    const balance = balanceScore(st, g, h, ctx.binpack)
    const affinity = affinityScore(st, g, h)
    const spread = spreadScore(st, g, h, bounds)
    let sum = WEIGHTS.balance * balance
    let weights: number = WEIGHTS.balance
    if (network !== undefined) [sum, weights] = [sum + WEIGHTS.network * network, weights + WEIGHTS.network]
    if (affinity !== undefined)
      [sum, weights] = [sum + WEIGHTS.affinity * affinity, weights + WEIGHTS.affinity]
    if (spread !== undefined) [sum, weights] = [sum + WEIGHTS.spread * spread, weights + WEIGHTS.spread]
    const total = sum / weights
    if (verdicts) {
      const scores: ScoreBreakdown = { balance, total }
      if (network !== undefined) Object.assign(scores, { network, networkCostMs: cost })
      if (affinity !== undefined) scores.affinity = affinity
      if (spread !== undefined) scores.spread = spread
      verdicts[h] = { ...(verdicts[h] as HostVerdict), scores }
    }
    if (total > bestTotal + EPS) {
      ;[best, bestTotal, bestTie] = [h, total, mix(slotHash, ctx.hostHash[h] as number)]
    } else if (total > bestTotal - EPS) {
      const tie = mix(slotHash, ctx.hostHash[h] as number)
      if (tie > bestTie) [best, bestTotal, bestTie] = [h, total, tie]
    }
  })
  return { host: best }
}

/** Local search keeps what the greedy pass honoured: a slot moves only to a host with no less affinity and the same spread value. */
function neutral(g: GroupModel, from: number, to: number): boolean {
  if (g.spreadKey && g.spreadKey[from] !== g.spreadKey[to]) return false
  return !g.affinity || (g.affinity[to] as number) >= (g.affinity[from] as number) - EPS
}

/** Where the job's slots are: on a large cluster, the hosts moves consider. */
function jobFootprint(st: PlacementState): number[] {
  const out: number[] = []
  for (let h = 0; h < st.jobCount.length; h++) if ((st.jobCount[h] as number) > 0) out.push(h)
  return out
}

/** Groups with more candidates than this move only onto hosts that already hold slots of the job. */
const MOVE_ALL_MAX = 64

/**
 * Hosts a slot may move to: every candidate on a small cluster; on a large
 * one the job's footprint (the greedy pass already put slots near their
 * partners; moves consolidate them onto each other's hosts), which keeps a
 * pass linear in the job, not in the cluster.
 */
function moveTargets(g: GroupModel, footprint: number[]): number[] {
  if (g.candidates.length <= MOVE_ALL_MAX) return g.candidates
  return footprint.filter((h) => g.filterOf[h] === undefined)
}

function localSearch(ctx: Context): number {
  const { st, problem } = ctx
  const nGroups = problem.groups.length
  const pairWeight = new Float64Array(nGroups * nGroups)
  for (const g of problem.groups)
    for (const e of g.edges) pairWeight[g.index * nGroups + e.group] = e.pairWeight
  const talking = [...st.slots.keys()].filter((s) => {
    if ((st.hostOf[s] as number) < 0 || st.fixed[s]) return false
    const g = problem.groups[(st.slots[s] as Slot).group] as GroupModel
    return g.edges.length > 0 || g.external.length > 0
  })
  let improvements = 0
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let improved = false
    const footprint = jobFootprint(st)
    for (const s of talking) {
      const g = problem.groups[(st.slots[s] as Slot).group] as GroupModel
      const from = st.hostOf[s] as number
      const current = st.networkCost(g, from)
      st.unplace(s)
      let best = from
      let bestDelta = -EPS * Math.max(1, current)
      for (const h of moveTargets(g, footprint)) {
        if (h === from || !neutral(g, from, h)) continue
        const delta = st.networkCost(g, h) - current
        if (delta < bestDelta && !st.check(g, h, false)) [best, bestDelta] = [h, delta]
      }
      st.place(s, best)
      if (best !== from) [improvements, improved] = [improvements + 1, true]
    }
    for (let i = 0; i < talking.length; i++) {
      for (let j = i + 1; j < talking.length; j++) {
        const s = talking[i] as number
        const t = talking[j] as number
        const gs = problem.groups[(st.slots[s] as Slot).group] as GroupModel
        const gt = problem.groups[(st.slots[t] as Slot).group] as GroupModel
        const hs = st.hostOf[s] as number
        const ht = st.hostOf[t] as number
        if (gs === gt || hs === ht || !neutral(gs, hs, ht) || !neutral(gt, ht, hs)) continue
        // the s–t pair is counted in both slots' costs and its RTT does not change with the swap
        const pw = (pairWeight[gs.index * nGroups + gt.index] as number) * st.rtt(hs, ht)
        const before = st.networkCost(gs, hs) + st.networkCost(gt, ht) - pw
        st.unplace(s)
        st.unplace(t)
        let swapped = false
        if (!st.check(gt, hs, false)) {
          st.place(t, hs)
          if (!st.check(gs, ht, false)) {
            st.place(s, ht)
            const after = st.networkCost(gs, ht) + st.networkCost(gt, hs) - pw
            if (after < before - EPS * Math.max(1, before)) swapped = true
            else st.unplace(s)
          }
          if (!swapped) st.unplace(t)
        }
        if (swapped) [improvements, improved] = [improvements + 1, true]
        else {
          st.place(s, hs)
          st.place(t, ht)
        }
      }
    }
    if (!improved) break
  }
  return improvements
}

/** Work budget (slot × candidate-host evaluations per round) of the perturbation rounds. */
const PERTURB_WORK = 200_000
const MAX_ROUNDS = 30

/** xorshift32, seeded from the job and the start: perturbation is deterministic */
function rng(seed: number): () => number {
  let x = seed || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 4294967296
  }
}

/**
 * Iterated local search: kick a few talking slots to random feasible hosts,
 * search again, keep the result only if it is cheaper. Rounds are bounded by
 * a work budget, so small jobs get many and large ones few.
 */
function perturb(ctx: Context, start: Start): number {
  const { st, problem } = ctx
  const talking = [...st.slots.keys()].filter((s) => {
    const g = problem.groups[(st.slots[s] as Slot).group] as GroupModel
    return (st.hostOf[s] as number) >= 0 && !st.fixed[s] && (g.edges.length > 0 || g.external.length > 0)
  })
  if (talking.length < 2) return 0
  const widest = Math.min(
    Math.max(...problem.groups.map((g) => g.candidates.length)),
    MOVE_ALL_MAX + talking.length,
  )
  const rounds = Math.min(MAX_ROUNDS, Math.floor(PERTURB_WORK / (talking.length * widest)))
  const next = rng(hash32(`${problem.job.name}/${start.first ?? -1}/${start.binpack}`))
  let best = Int32Array.from(st.hostOf)
  let bestCost = st.totalNetworkCost()
  let improvements = 0
  const restore = (to: Int32Array) => {
    for (const s of talking) st.unplace(s)
    for (const s of talking) st.place(s, to[s] as number)
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 2 + (r % 3); k++) {
      const s = talking[Math.floor(next() * talking.length)] as number
      const g = problem.groups[(st.slots[s] as Slot).group] as GroupModel
      if (next() < 0.5) {
        const to = g.candidates[Math.floor(next() * g.candidates.length)] as number
        const from = st.unplace(s)
        st.place(s, neutral(g, from, to) && !st.check(g, to, false) ? to : from)
        continue
      }
      // swap with another slot: frees room where a move alone would not fit
      const t = talking[Math.floor(next() * talking.length)] as number
      const gt = problem.groups[(st.slots[t] as Slot).group] as GroupModel
      if (gt === g || st.hostOf[t] === st.hostOf[s]) continue
      const hs = st.unplace(s)
      const ht = st.unplace(t)
      const ok = neutral(g, hs, ht) && neutral(gt, ht, hs) && !st.check(gt, hs, false)
      if (ok) st.place(t, hs)
      if (ok && !st.check(g, ht, false)) st.place(s, ht)
      else {
        if (ok) st.unplace(t)
        st.place(s, hs)
        st.place(t, ht)
      }
    }
    localSearch(ctx)
    const cost = st.totalNetworkCost()
    if (cost < bestCost - EPS * Math.max(1, bestCost)) {
      ;[best, bestCost] = [Int32Array.from(st.hostOf), cost]
      improvements++
    } else restore(best)
  }
  return improvements
}

interface Start {
  binpack: boolean
  /** host forced for the first slot (the first group of the dependency order) */
  first?: number
}

interface Run {
  st: PlacementState
  failures: PlacementFailure[]
  verdictsByGroup: Map<number, HostVerdict[]>
  greedyCost: number
  improvements: number
}

/** One greedy pass from a start, then local search. */
function run(
  base: Omit<Context, 'st' | 'binpack'>,
  slots: Slot[],
  kept: Int32Array,
  rtt: (a: number, b: number) => number,
  start: Start,
): Run {
  const { problem } = base
  const hosts = problem.hosts
  const st = new PlacementState(problem, slots, rtt)
  kept.forEach((h, s) => {
    if (h < 0) return
    st.fixed[s] = 1
    st.place(s, h)
  })
  const ctx: Context = { ...base, st, binpack: start.binpack }
  const system = problem.job.type === 'system'
  const failures: PlacementFailure[] = []
  const verdictsByGroup = new Map<number, HostVerdict[]>()
  slots.forEach((slot, s) => {
    const g = problem.groups[slot.group] as GroupModel
    let verdicts: HostVerdict[] | undefined
    if (ctx.explain && slot.index === 0) {
      verdicts = hosts.map((h, i) => {
        const v: HostVerdict = { host: h.id, name: h.name }
        if (g.filterOf[i]) Object.assign(v, { filter: g.filterOf[i], reason: g.reasonOf[i] })
        return v
      })
      verdictsByGroup.set(slot.group, verdicts)
    }
    if (system) {
      // one slot per eligible host: slot i is the group's i-th candidate
      const h = g.candidates[slot.index] as number
      const f = st.check(g, h, true)
      if (f)
        failures.push({ group: g.name, index: slot.index, reason: `${hosts[h]?.name}: ${f[0]}: ${f[1]}` })
      else st.place(s, h)
      return
    }
    if (st.fixed[s]) return
    const choice = chooseHost(ctx, s, verdicts)
    if (s === 0 && start.first !== undefined && 'host' in choice) st.place(s, start.first)
    else if ('host' in choice) st.place(s, choice.host)
    else failures.push({ group: g.name, index: slot.index, reason: choice.reason })
  })
  const greedyCost = st.totalNetworkCost()
  // perturbation rounds only for small jobs: on large ones their RTT evaluations cost more than the greedy pass
  const small = problemSize(problem, slots) <= MULTI_START_MAX_SIZE
  const improvements = system ? 0 : localSearch(ctx) + (small ? perturb(ctx, start) : 0)
  return { st, failures, verdictsByGroup, greedyCost, improvements }
}

/** Starts besides the job's own balance: binpack, and binpack from each of the roomiest hosts for the first slot. */
const EXTRA_STARTS = 6
/** slots × widest candidate set up to which a job gets the extra starts (each costs a greedy pass) */
const MULTI_START_MAX_SIZE = 2_000

const problemSize = (problem: Problem, slots: Slot[]) =>
  slots.length * Math.max(0, ...problem.groups.map((g) => g.candidates.length))

function starts(problem: Problem, slots: Slot[], hostHash: Uint32Array): Start[] {
  const own: Start = { binpack: problem.job.balance === 'binpack' }
  const talks = problem.groups.some((g) => g.edges.length > 0 || g.external.length > 0)
  const first = slots[0] && (problem.groups[slots[0].group] as GroupModel)
  if (
    !talks ||
    !first ||
    problem.job.type === 'system' ||
    problemSize(problem, slots) > MULTI_START_MAX_SIZE
  ) {
    return [own]
  }
  const free = (h: number) => {
    const host = problem.hosts[h] as { capacity: { cpu: number }; used: { cpu: number } }
    return host.capacity.cpu - host.used.cpu
  }
  const roomiest = [...first.candidates]
    .sort((a, b) => free(b) - free(a) || (hostHash[a] as number) - (hostHash[b] as number))
    .slice(0, EXTRA_STARTS)
  return [
    own,
    ...(own.binpack ? [] : [{ binpack: true }]),
    ...roomiest.map((h) => ({ binpack: true, first: h })),
  ]
}

/** per slot, the host index it is kept on (PlacementInput.keep), else -1 */
function keptHosts(input: PlacementInput, problem: Problem, slots: Slot[]): Int32Array {
  const kept = new Int32Array(slots.length).fill(-1)
  if (problem.job.type === 'system' || !input.keep?.length) return kept
  const hostIndex = new Map(input.hosts.map((h, i) => [h.id, i]))
  const slotIndex = new Map(slots.map((slot, s) => [`${problem.groups[slot.group]?.name}/${slot.index}`, s]))
  for (const k of input.keep) {
    const s = slotIndex.get(`${k.group}/${k.index}`)
    const h = hostIndex.get(k.host)
    if (s !== undefined && h !== undefined) kept[s] = h
  }
  return kept
}

/**
 * Places a job. Pure: the same input gives the same plan. A job whose groups
 * talk is solved from several starts (its own balance, binpack, binpack from
 * each of the roomiest hosts) and the plan with the fewest failures, then the
 * lowest network cost, wins; on a tie the first start (the job's balance) does.
 */
export function place(input: PlacementInput): Plan {
  const opts = input.options ?? {}
  const problem = compileProblem(input.job, input.hosts, input.allocations ?? [], opts, input.traffic)
  const order = dependencyOrder(problem)
  const slots: Slot[] = order.flatMap((g) =>
    Array.from({ length: problem.groups[g]?.count ?? 0 }, (_, index) => ({ group: g, index })),
  )
  const rtt = rttModel(input.hosts, opts)
  const hostHash = Uint32Array.from(input.hosts, (h) => hash32(h.id))
  const base = { problem, explain: opts.explain !== false, hostHash }
  const kept = keptHosts(input, problem, slots)
  let best: Run | undefined
  let bestCost = 0
  for (const start of starts(problem, slots, hostHash)) {
    const r = run(base, slots, kept, rtt, start)
    const cost = r.st.totalNetworkCost()
    if (
      !best ||
      r.failures.length < best.failures.length ||
      (r.failures.length === best.failures.length && cost < bestCost - EPS * Math.max(1, bestCost))
    ) {
      ;[best, bestCost] = [r, cost]
    }
  }
  const { st, failures, verdictsByGroup, greedyCost } = best as Run
  let { improvements } = best as Run
  // exact search only where local search's rules are all there is: no soft affinity or spread to keep
  const soft = problem.groups.some((g) => g.affinityWeight > 0 || g.spreads.length > 0)
  if (
    opts.exact !== false &&
    !failures.length &&
    !soft &&
    problemSize(problem, slots) <= EXACT_MAX_SIZE &&
    bestCost > 0 &&
    exactSearch(st, problem.groups)
  ) {
    bestCost = st.totalNetworkCost()
    improvements++
  }
  const placements: Placement[] = slots
    .map((slot, s) => ({ slot, h: st.hostOf[s] as number }))
    .filter(({ h }) => h >= 0)
    .map(({ slot, h }) => ({
      group: problem.groups[slot.group]?.name as string,
      index: slot.index,
      host: input.hosts[h]?.id as string,
      hostName: input.hosts[h]?.name as string,
    }))
    .sort((a, b) => {
      const ga = input.job.groups.findIndex((g) => g.name === a.group)
      const gb = input.job.groups.findIndex((g) => g.name === b.group)
      return ga - gb || a.index - b.index
    })
  return {
    job: input.job.name,
    placements,
    failures,
    groups: problem.groups.map((g) => {
      const hosts = verdictsByGroup.get(g.index) ?? []
      const filtered: Record<string, number> = {}
      for (const v of hosts) filtered[v.filter ?? 'feasible'] = (filtered[v.filter ?? 'feasible'] ?? 0) + 1
      return {
        group: g.name,
        order: order.indexOf(g.index),
        wanted: g.count,
        placed: placements.filter((p) => p.group === g.name).length,
        hosts,
        filtered,
      }
    }),
    networkCost: bestCost,
    greedyCost,
    improvements,
  }
}
