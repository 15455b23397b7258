// Settling a job's slots from whatever claims are visible: the owner's
// allocation records, a former owner's (still visible while it lives), and
// the target hosts' allocstate records (which outlive a dead owner, so a new
// owner adopts running allocations instead of placing them again). After a
// partition two owners may each have placed a slot, and a host declared dead
// may come back holding slots placed elsewhere meanwhile; every host applies
// the same rule to the same records and reaches the same verdict, so the
// loser is stopped where it runs and the count returns to the spec.
import { type AllocStateValue, type AllocValue, HOLDING } from './records.js'

/** One allocation as seen through every record that names it. */
export interface Claim {
  alloc: AllocValue
  /** peer ids under whose allocs/ prefix it is written */
  owners: string[]
  /** its host's verdict and life, if the host has written one */
  state?: AllocStateValue
}

export interface SlotVerdict {
  group: string
  slot: string
  winner: Claim
  /** other live claims on the slot: to be stopped */
  losers: Claim[]
}

export const slotOf = (a: Pick<AllocValue, 'group' | 'slot'>): string => `${a.group}/${a.slot}`

/** Merges alloc and allocstate records into one claim per allocation id. */
export function claimsOf(
  allocs: { owner: string; alloc: AllocValue }[],
  states: AllocStateValue[],
): Map<string, Claim> {
  const out = new Map<string, Claim>()
  for (const { owner, alloc } of allocs) {
    const c = out.get(alloc.id)
    if (c) c.owners.push(owner)
    else out.set(alloc.id, { alloc, owners: [owner] })
  }
  for (const state of states) {
    const c = out.get(state.id)
    if (c) c.state = state
    else out.set(state.id, { alloc: state, owners: [], state })
  }
  return out
}

/**
 * Whether a claim may hold its slot: its host is alive and has not refused
 * or ended it. A finished batch allocation keeps its slot (the work is done,
 * not to be run again); a finished service allocation does not.
 */
export function holds(c: Claim, alive: ReadonlySet<string>, batch: boolean): boolean {
  if (!alive.has(c.alloc.host)) return false
  if (!c.state) return true
  return HOLDING.has(c.state.status) || (batch && c.state.status === 'complete')
}

/**
 * The first in this order wins: admitted by its host, then placed later, then
 * the smaller id. Later wins because a second claim on a slot is only ever
 * made when the first looked void (its host declared dead, or cut off with
 * an owner of its own): the replacement is the cluster's newer decision, and
 * a host that comes back stops what was placed elsewhere meanwhile instead
 * of pulling it back.
 */
function rank(a: Claim, b: Claim): number {
  const admitted = Number(b.state !== undefined) - Number(a.state !== undefined)
  return admitted || b.alloc.createdAt - a.alloc.createdAt || (a.alloc.id < b.alloc.id ? -1 : 1)
}

/** Every slot with at least one holding claim, its winner and its losers. */
export function settle(
  claims: Iterable<Claim>,
  alive: ReadonlySet<string>,
  batch: boolean,
): Map<string, SlotVerdict> {
  const bySlot = new Map<string, Claim[]>()
  for (const c of claims) {
    if (!holds(c, alive, batch)) continue
    const k = slotOf(c.alloc)
    bySlot.set(k, [...(bySlot.get(k) ?? []), c])
  }
  const out = new Map<string, SlotVerdict>()
  for (const [k, cs] of bySlot) {
    const [winner, ...losers] = cs.sort(rank) as [Claim, ...Claim[]]
    out.set(k, { group: winner.alloc.group, slot: winner.alloc.slot, winner, losers })
  }
  return out
}
