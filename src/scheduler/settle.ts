// Settling a job's slots from whatever claims are visible: the owner's
// allocation records, a former owner's (still visible while it lives), and
// the target hosts' allocstate records (which outlive a dead owner, so a new
// owner adopts running allocations instead of placing them again). After a
// partition two owners may each have placed a slot, and a host declared dead
// may come back holding slots placed elsewhere meanwhile; every host applies
// the same rule to the same records and reaches the same verdict, so the
// loser is stopped where it runs and the count returns to the spec.
import { type AllocStateValue, type AllocValue, HOLDING, type JobValue } from './records.js'

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
  /**
   * the winner's replacement (a new version of the job, or a move off a
   * drained host) while it is not yet healthy: it runs beside the winner,
   * which keeps the slot until then, so the slot is never without an instance
   */
  incoming?: Claim
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

/**
 * When each check of an allocation's service last turned passing: "<host>/<alloc id>" → "<service>/<check>"
 * → ms. The health checker writes only transitions, so a passing record's write time (its HLC wall
 * clock, the checking host's) is when the check started passing.
 */
export type PassingSince = ReadonlyMap<string, ReadonlyMap<string, number>>

/** PassingSince from health/ records (already decoded: their owner is the endpoint's host). */
export function passingSince(
  results: { endpointKey: string; service?: string; check?: string; status: string; at: number }[],
): PassingSince {
  const out = new Map<string, Map<string, number>>()
  for (const r of results) {
    // endpoints/<host>/<container id = allocation id>/<ifname>
    const [, host, id] = r.endpointKey.split('/')
    if (r.status !== 'passing' || !host || !id || !r.service || !r.check) continue
    const k = `${host}/${id}`
    const m = out.get(k) ?? new Map<string, number>()
    m.set(`${r.service}/${r.check}`, r.at)
    out.set(k, m)
  }
  return out
}

/**
 * Whether a replacement may take its slot over: it has been healthy for the
 * group's `update.minHealthyMs` (default 10 s, Nomad's min_healthy_time).
 * Healthy is running, and when the group's service has checks, each of them
 * passing too (Nomad's `health_check = "checks"`): the time counts from the
 * later of the two. The runner writes its state only on change, so `updatedAt`
 * of a running allocation is when it started running; both times are the
 * runner host's clock, read on another host: skew shortens or lengthens the
 * wait by as much.
 */
export const DEFAULT_MIN_HEALTHY_MS = 10_000
export function healthGate(
  job: JobValue | undefined,
  now: number,
  passing: PassingSince = new Map(),
): (c: Claim) => boolean {
  return (c) => {
    if (c.state?.status !== 'running') return false
    const g = job?.spec.groups.find((x) => x.name === c.alloc.group)
    let since = c.state.updatedAt
    const svc = g?.service
    for (const check of svc?.checks ?? []) {
      const at = passing.get(`${c.alloc.host}/${c.alloc.id}`)?.get(`${svc?.name}/${check.name}`)
      if (at === undefined) return false
      since = Math.max(since, at)
    }
    return now - since >= (g?.update?.minHealthyMs ?? DEFAULT_MIN_HEALTHY_MS)
  }
}

/**
 * Every slot with at least one holding claim, its winner, its losers and the
 * winner's replacement still being brought up. `healthy` says when a
 * replacement may take over (every host must pass the same rule: healthGate);
 * one of a version older than `version` (the job's) that is not healthy loses.
 */
export function settle(
  claims: Iterable<Claim>,
  alive: ReadonlySet<string>,
  batch: boolean,
  healthy: (c: Claim) => boolean,
  version?: number,
): Map<string, SlotVerdict> {
  const bySlot = new Map<string, Claim[]>()
  for (const c of claims) {
    if (!holds(c, alive, batch)) continue
    const k = slotOf(c.alloc)
    bySlot.set(k, [...(bySlot.get(k) ?? []), c])
  }
  const out = new Map<string, SlotVerdict>()
  for (const [k, cs] of bySlot) {
    cs.sort(rank)
    // a replacement and the allocation it replaces hold the slot together until the replacement is
    // healthy, whichever ranks first (the replacement is later, but admitted only after a while)
    const replacementOf = (c: Claim) => cs.find((x) => x.alloc.replaces === c.alloc.id)
    const top = cs[0] as Claim
    const old = replacementOf(top) ? top : cs.find((x) => x.alloc.id === top.alloc.replaces)
    const replacement = old && replacementOf(old)
    let winner = top
    let incoming: Claim | undefined
    if (old && replacement) {
      if (healthy(replacement)) winner = replacement
      // superseded before it was healthy (a newer version, or a revert): it loses, and the slot is
      // replaced for the current version instead (Nomad cancels the older deployment the same way)
      else if (version !== undefined && replacement.alloc.jobVersion < version) winner = old
      else {
        winner = old
        incoming = replacement
      }
    }
    const losers = cs.filter((c) => c !== winner && c !== incoming)
    out.set(k, {
      group: winner.alloc.group,
      slot: winner.alloc.slot,
      winner,
      losers,
      ...(incoming ? { incoming } : {}),
    })
  }
  return out
}
