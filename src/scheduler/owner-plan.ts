// What a job's owner writes, as a pure function of what it sees: keep every
// slot whose allocation still holds (adopting those a former owner placed),
// place the missing ones around them, drop the rest. Run on every change and
// on a timer; the same records give the same writes, so a pass that finds
// nothing to do writes nothing.
import { createHash } from 'node:crypto'
import { groupDemand } from './placement/problem.js'
import { place } from './placement/solver.js'
import type { ExistingAllocation, HostView, Plan } from './placement/types.js'
import { type AllocValue, HOLDING, type JobValue } from './records.js'
import {
  type RescheduleDecision,
  type RescheduleTracker,
  rescheduleDecision,
  resolveReschedule,
} from './reschedule.js'
import { type Claim, type SlotVerdict, settle, slotOf } from './settle.js'

export interface OwnerInput {
  self: string
  job: JobValue
  /** every known host; `alive` = may take placements; `used` is what its admitted allocations use, this job's included */
  hosts: HostView[]
  /** hosts whose allocations still hold their slots (alive members, drained ones included); default: alive hosts */
  live?: ReadonlySet<string>
  /** this job's allocations, from every owner's records and every host's states */
  claims: Iterable<Claim>
  /** other jobs' allocations (service affinities, anti-affinities) */
  others?: ExistingAllocation[]
  now: number
}

export interface OwnerPlan {
  /** allocation records to write under this host's prefix (new slots and adopted ones) */
  puts: AllocValue[]
  /** slots ("group/slot") of this host's records to delete */
  deletes: string[]
  /** set when slots had to be placed */
  plan?: Plan
  verdicts: Map<string, SlotVerdict>
  /** empty slots not placed this pass ("group/slot"): waiting out a reschedule delay, or given up */
  deferred: Map<string, { until?: number; reason: string }>
}

/** lowercase, DNS-label-safe, unique per placement: the job, the group and a hash of where and when */
export function allocId(job: string, group: string, slot: string, host: string, at: number): string {
  const h = createHash('sha256').update(`${job}\0${group}\0${slot}\0${host}\0${at}`).digest('hex')
  return `${job}-${group}-${h.slice(0, 10)}`
}

/** The slots a non-system job wants: "group/index" for index < count. */
function wantedSlots(job: JobValue): Set<string> {
  const out = new Set<string>()
  for (const g of job.spec.groups) for (let i = 0; i < g.count; i++) out.add(`${g.name}/${i}`)
  return out
}

/** A failed allocation ends its run in one of these (the runner's verdict, on a live host). */
const FAILED = new Set(['failed', 'lost'])

/**
 * Every empty slot whose latest allocation of this version of the job failed
 * (what the reschedule policy says of it), or was itself a replacement (its
 * count carries on to the next one, so a refusal in between does not reset it).
 */
function reschedules(
  claims: Claim[],
  job: JobValue,
  verdicts: Map<string, SlotVerdict>,
  now: number,
): Map<string, { claim: Claim; decision: RescheduleDecision }> {
  const latest = new Map<string, Claim>()
  for (const c of claims) {
    const k = slotOf(c.alloc)
    if (verdicts.has(k) || c.alloc.jobVersion !== job.version) continue
    const seen = latest.get(k)
    if (!seen || c.alloc.createdAt > seen.alloc.createdAt) latest.set(k, c)
  }
  const out = new Map<string, { claim: Claim; decision: RescheduleDecision }>()
  for (const [k, c] of latest) {
    if (c.state && FAILED.has(c.state.status)) {
      const group = job.spec.groups.find((g) => g.name === c.alloc.group)
      const policy = resolveReschedule(group?.reschedule, job.spec.type)
      out.set(k, {
        claim: c,
        decision: rescheduleDecision(policy, c.state.updatedAt, c.alloc.reschedule, now),
      })
    } else if (c.alloc.reschedule) {
      out.set(k, { claim: c, decision: { kind: 'place', tracker: c.alloc.reschedule } })
    }
  }
  return out
}

/** Hosts as placement should see them: kept allocations' resources taken out of `used` (keep counts them again). */
function withoutKept(hosts: HostView[], kept: Claim[]): HostView[] {
  const back = new Map<string, { cpu: number; memoryMb: number }>()
  for (const c of kept) {
    if (!c.state || !HOLDING.has(c.state.status)) continue
    const b = back.get(c.alloc.host) ?? { cpu: 0, memoryMb: 0 }
    b.cpu += c.alloc.resources.cpu
    b.memoryMb += c.alloc.resources.memoryMb
    back.set(c.alloc.host, b)
  }
  return hosts.map((h) => {
    const b = back.get(h.id)
    if (!b) return h
    const used = { cpu: Math.max(0, h.used.cpu - b.cpu), memoryMb: Math.max(0, h.used.memoryMb - b.memoryMb) }
    return { ...h, used }
  })
}

/**
 * Hosts that refused an allocation of this version of the job are left out
 * of its placement until they have room again (their capacity record says
 * so), so an owner working from a stale view does not offer the same slot to
 * the same full host in a loop.
 */
function refusing(claims: Claim[], job: JobValue, hosts: HostView[]): Set<string> {
  const out = new Set<string>()
  for (const c of claims) {
    if (c.state?.status !== 'rejected' || c.alloc.jobVersion !== job.version) continue
    const h = hosts.find((x) => x.id === c.alloc.host)
    const need = c.alloc.resources
    if (
      h &&
      h.capacity.cpu - h.used.cpu >= need.cpu &&
      h.capacity.memoryMb - h.used.memoryMb >= need.memoryMb
    )
      continue
    out.add(c.alloc.host)
  }
  return out
}

export function ownerPlan(input: OwnerInput): OwnerPlan {
  const { self, job, now } = input
  const claims = [...input.claims]
  const live = input.live ?? new Set(input.hosts.filter((h) => h.alive).map((h) => h.id))
  const verdicts = settle(claims, live, job.spec.type === 'batch')
  const mine = new Map<string, AllocValue>()
  for (const c of claims) if (c.owners.includes(self)) mine.set(c.alloc.id, c.alloc)
  const out: OwnerPlan = { puts: [], deletes: [], verdicts, deferred: new Map() }
  const keepSlots = new Map<string, Claim>()
  // the failed allocations of slots that wait: their records stay (the host keeps their state, reason
  // and exit code visible while an owner's record names them), adopted if another owner placed them
  const retained = new Set<string>()
  const trackers = new Map<string, RescheduleTracker>()

  if (!job.stopped) {
    for (const [slot, { claim, decision }] of reschedules(claims, job, verdicts, now)) {
      if (decision.kind === 'place') {
        trackers.set(slot, decision.tracker)
        continue
      }
      const reason =
        decision.kind === 'wait'
          ? `failed: placed again after ${new Date(decision.until).toISOString()} (reschedule ${decision.tracker.attempt})`
          : decision.reason
      out.deferred.set(slot, decision.kind === 'wait' ? { until: decision.until, reason } : { reason })
      retained.add(claim.alloc.id)
      if (!mine.has(claim.alloc.id)) out.puts.push(recordOf(claim.alloc))
    }
    const open = (slot: string) => !keepSlots.has(slot) && !out.deferred.has(slot)
    const skip = refusing(claims, job, input.hosts)
    const hosts = withoutKept(
      input.hosts.filter((h) => !skip.has(h.id)),
      [...verdicts.values()].map((v) => v.winner),
    )
    if (job.spec.type === 'system') {
      // a system job's slots are its eligible hosts: placement says which they are
      const plan = place({ job: job.spec, hosts, allocations: input.others ?? [] })
      out.plan = plan
      for (const p of plan.placements) {
        const slot = `${p.group}/${p.host}`
        if (!out.deferred.has(slot))
          addSlot(out, keepSlots, verdicts, job, p.group, p.host, p.host, p.hostName, now, trackers.get(slot))
      }
    } else {
      const wanted = wantedSlots(job)
      for (const [slot, v] of verdicts) if (wanted.has(slot)) keepSlots.set(slot, v.winner)
      if ([...wanted].some(open)) {
        const keep = [...keepSlots.values()].map((c) => ({
          group: c.alloc.group,
          index: Number(c.alloc.slot),
          host: c.alloc.host,
        }))
        const plan = place({ job: job.spec, hosts, allocations: input.others ?? [], keep })
        out.plan = plan
        for (const p of plan.placements) {
          const slot = `${p.group}/${p.index}`
          if (open(slot))
            addSlot(
              out,
              keepSlots,
              verdicts,
              job,
              p.group,
              String(p.index),
              p.host,
              p.hostName,
              now,
              trackers.get(slot),
            )
        }
      }
    }
  }
  // adopt the slots kept from records not yet under this host's prefix
  const placed = new Set(out.puts.map((a) => a.id))
  for (const c of keepSlots.values()) {
    if (!mine.has(c.alloc.id) && !placed.has(c.alloc.id)) out.puts.push(recordOf(c.alloc))
  }
  // delete this host's records that hold no kept slot (superseded, void, unwanted, stopped)
  const keptIds = new Set([...keepSlots.values()].map((c) => c.alloc.id))
  const putSlots = new Set(out.puts.map(slotOf))
  for (const a of mine.values()) {
    if (keptIds.has(a.id) || retained.has(a.id)) continue
    // a record is keyed by its slot: a new allocation for the slot overwrites it, no delete needed
    if (!putSlots.has(slotOf(a))) out.deletes.push(slotOf(a))
  }
  out.deletes = [...new Set(out.deletes)].sort()
  return out
}

/** the alloc fields only: a state's extra fields never go into an alloc record */
function recordOf(a: AllocValue): AllocValue {
  const { id, job, jobVersion, group, slot, host, hostName, resources, createdAt, reschedule } = a
  return {
    id,
    job,
    jobVersion,
    group,
    slot,
    host,
    hostName,
    resources,
    createdAt,
    ...(reschedule ? { reschedule } : {}),
  }
}

/** One wanted slot: kept if a claim holds it, else a new allocation on the host placement chose. */
function addSlot(
  out: OwnerPlan,
  keepSlots: Map<string, Claim>,
  verdicts: Map<string, SlotVerdict>,
  job: JobValue,
  group: string,
  slot: string,
  host: string,
  hostName: string,
  now: number,
  reschedule: RescheduleTracker | undefined,
): void {
  const key = `${group}/${slot}`
  const held = verdicts.get(key)
  if (held) {
    keepSlots.set(key, held.winner)
    return
  }
  const spec = job.spec.groups.find((g) => g.name === group)
  const alloc: AllocValue = {
    id: allocId(job.spec.name, group, slot, host, now),
    job: job.spec.name,
    jobVersion: job.version,
    group,
    slot,
    host,
    hostName,
    resources: spec ? groupDemand(spec) : { cpu: 0, memoryMb: 0 },
    createdAt: now,
    ...(reschedule ? { reschedule } : {}),
  }
  out.puts.push(alloc)
  keepSlots.set(key, { alloc, owners: [] })
}
