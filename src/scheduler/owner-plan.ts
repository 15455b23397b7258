// What a job's owner writes, as a pure function of what it sees: keep every
// slot whose allocation still holds (adopting those a former owner placed),
// place the missing ones around them, drop the rest. Run on every change and
// on a timer; the same records give the same writes, so a pass that finds
// nothing to do writes nothing.
import { createHash } from 'node:crypto'
import { canonicalJson } from '../store/record.js'
import type { JsonValue } from '../store/types.js'
import { groupDemand } from './placement/problem.js'
import { place } from './placement/solver.js'
import type { ExistingAllocation, HostView, MeasuredTraffic, Plan } from './placement/types.js'
import { type AllocValue, HOLDING, type JobValue, type Resources } from './records.js'
import {
  type RescheduleDecision,
  type RescheduleTracker,
  rescheduleDecision,
  resolveReschedule,
} from './reschedule.js'
import { type Claim, healthGate, type PassingSince, type SlotVerdict, settle, slotOf } from './settle.js'
import type { GroupSpec } from './spec.js'

export interface OwnerInput {
  self: string
  job: JobValue
  /** every known host; `alive` = may take placements; `used` is what its admitted allocations use, this job's included */
  hosts: HostView[]
  /** hosts whose allocations still hold their slots (members not declared dead, drained ones included); default: alive hosts */
  live?: ReadonlySet<string>
  /** drained hosts (their capacity record says not eligible): their allocations move away */
  drained?: ReadonlySet<string>
  /** this job's allocations, from every owner's records and every host's states */
  claims: Iterable<Claim>
  /** other jobs' allocations (service affinities, anti-affinities) */
  others?: ExistingAllocation[]
  /** the cluster's measured service-to-service traffic (traffic/ records) */
  traffic?: readonly MeasuredTraffic[]
  /** health checks passing, by allocation (healthGate) */
  passing?: PassingSince
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
 * Every slot whose latest allocation of this version of the job failed (what
 * the reschedule policy says of it), or was itself a replacement (its count
 * carries on to the next one, so a refusal in between does not reset it).
 * A slot still held counts only when the failure came after its holder: a
 * replacement (update, drain) failed while the old allocation serves on.
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
    if (c.alloc.jobVersion !== job.version) continue
    const seen = latest.get(k)
    if (!seen || c.alloc.createdAt > seen.alloc.createdAt) latest.set(k, c)
  }
  const out = new Map<string, { claim: Claim; decision: RescheduleDecision }>()
  for (const [k, c] of latest) {
    const holder = verdicts.get(k)?.winner
    if (holder && holder.alloc.createdAt >= c.alloc.createdAt) continue
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

/** Hosts with these allocations' resources taken out of `used` (placement's `keep` counts them again). */
export function givenBack(hosts: HostView[], allocs: { host: string; resources: Resources }[]): HostView[] {
  const back = new Map<string, Resources>()
  for (const a of allocs) {
    const b = back.get(a.host) ?? { cpu: 0, memoryMb: 0 }
    back.set(a.host, { cpu: b.cpu + a.resources.cpu, memoryMb: b.memoryMb + a.resources.memoryMb })
  }
  return hosts.map((h) => {
    const b = back.get(h.id)
    if (!b) return h
    const used = { cpu: Math.max(0, h.used.cpu - b.cpu), memoryMb: Math.max(0, h.used.memoryMb - b.memoryMb) }
    return { ...h, used }
  })
}

/** Hosts as placement should see them: kept allocations that hold their host's capacity given back. */
const withoutKept = (hosts: HostView[], kept: Claim[]): HostView[] =>
  givenBack(
    hosts,
    kept.filter((c) => c.state && HOLDING.has(c.state.status)).map((c) => c.alloc),
  )

/** the host has this much free now */
const hasRoom = (h: HostView, need: Resources): boolean =>
  h.capacity.cpu - h.used.cpu >= need.cpu && h.capacity.memoryMb - h.used.memoryMb >= need.memoryMb

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
    if (h && hasRoom(h, c.alloc.resources)) continue
    out.add(c.alloc.host)
  }
  return out
}

/** a group as its version of the job says, when that version is still known (the current one or its history) */
function groupAt(job: JobValue, version: number, group: string): GroupSpec | undefined {
  const spec = version === job.version ? job.spec : job.history?.find((h) => h.version === version)?.spec
  return spec?.groups.find((g) => g.name === group)
}

/** what an allocation of the group runs: all of the group but how many there are and how they are updated */
const runs = ({ count: _count, update: _update, ...rest }: GroupSpec): string =>
  canonicalJson(rest as unknown as JsonValue)

/**
 * Nomad's in-place update: a slot held by an allocation of an older version
 * whose group runs exactly what the job's version runs (another group
 * changed, the count changed, or a revert went back to the spec it runs) is
 * not replaced: its allocation is the job's version now (the owner rewrites
 * its record), so an update never restarts what it did not change. Not for
 * a slot with a replacement coming up (that update is under way) or on a
 * drained host (it moves).
 */
function keepInPlace(job: JobValue, verdicts: Map<string, SlotVerdict>, drained: ReadonlySet<string>): void {
  for (const v of verdicts.values()) {
    const a = v.winner.alloc
    if (a.jobVersion >= job.version || v.incoming || drained.has(a.host)) continue
    const was = groupAt(job, a.jobVersion, a.group)
    const now = groupAt(job, job.version, a.group)
    if (was && now && runs(was) === runs(now))
      v.winner = { ...v.winner, alloc: { ...a, jobVersion: job.version } }
  }
}

/**
 * Slots whose allocation is to be replaced beside it: it runs an older
 * version of the job (a rolling update), its host was drained, or a
 * rebalance marked it to move (placement then picks its new host). At most
 * `update.maxParallel` (default 1) of a group at once, counting the
 * replacements already being brought up; in slot order, so every pass picks
 * the same ones. A group with a failed slot (a replacement that failed waits
 * out its reschedule delay, or was given up) replaces nothing more: the old
 * instances keep serving until the job changes. Maps each slot to the id of
 * the allocation it replaces.
 */
function replacements(
  job: JobValue,
  verdicts: Map<string, SlotVerdict>,
  drained: ReadonlySet<string>,
  deferred: ReadonlyMap<string, unknown>,
): Map<string, string> {
  const out = new Map<string, string>()
  const moving = new Set((job.rebalance?.moves ?? []).map((m) => m.alloc))
  for (const g of job.spec.groups) {
    const slots = [...verdicts].filter(([, v]) => v.group === g.name).sort(([a], [b]) => (a < b ? -1 : 1))
    const failing = [...deferred.keys()].some((slot) => slot.startsWith(`${g.name}/`))
    let budget = failing ? 0 : (g.update?.maxParallel ?? 1) - slots.filter(([, v]) => v.incoming).length
    for (const [slot, v] of slots) {
      if (budget <= 0) break
      if (v.incoming || deferred.has(slot)) continue
      const { jobVersion, host } = v.winner.alloc
      // drained, not merely unable to take placements: a suspect host keeps what it runs
      if (jobVersion >= job.version && !drained.has(host) && !moving.has(v.winner.alloc.id)) continue
      out.set(slot, v.winner.alloc.id)
      budget--
    }
  }
  return out
}

export function ownerPlan(input: OwnerInput): OwnerPlan {
  const { self, job, now } = input
  const claims = [...input.claims]
  const live = input.live ?? new Set(input.hosts.filter((h) => h.alive).map((h) => h.id))
  const verdicts = settle(
    claims,
    live,
    job.spec.type === 'batch',
    healthGate(job, now, input.passing),
    job.version,
  )
  if (!job.stopped) keepInPlace(job, verdicts, input.drained ?? new Set())
  const mine = new Map<string, AllocValue>()
  for (const c of claims) if (c.owners.includes(self)) mine.set(c.alloc.id, c.alloc)
  const out: OwnerPlan = { puts: [], deletes: [], verdicts, deferred: new Map() }
  /** slot → the claim this owner's record for it names */
  const keepSlots = new Map<string, Claim>()
  // the failed allocations of slots that wait: their records stay (the host keeps their state, reason
  // and exit code visible while an owner's record names them), adopted if another owner placed them
  const retained = new Set<string>()
  const fresh: Fresh = { trackers: new Map(), replaces: new Map() }

  if (!job.stopped) {
    for (const [slot, { claim, decision }] of reschedules(claims, job, verdicts, now)) {
      if (decision.kind === 'place') {
        fresh.trackers.set(slot, decision.tracker)
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
    fresh.replaces = replacements(job, verdicts, input.drained ?? new Set(), out.deferred)
    // what stays where it is, as the owner's record names it: the holder, or the replacement being
    // brought up beside it (a waiting slot keeps the record of its failed allocation instead)
    const staying = new Map<string, Claim>()
    for (const [slot, v] of verdicts)
      if (!fresh.replaces.has(slot) && !out.deferred.has(slot)) staying.set(slot, v.incoming ?? v.winner)
    // open: nothing stays in it, it does not wait, and no allocation was added for it this pass
    const open = (slot: string) => !staying.has(slot) && !out.deferred.has(slot) && !keepSlots.has(slot)
    const skip = refusing(claims, job, input.hosts)
    const hosts = withoutKept(
      input.hosts.filter((h) => !skip.has(h.id)),
      [...staying.values()],
    )
    if (job.spec.type === 'system') {
      // a system job's slots are its eligible hosts: placement says which they are
      const plan = place({ job: job.spec, hosts, allocations: input.others ?? [], traffic: input.traffic })
      out.plan = plan
      for (const p of plan.placements) {
        const slot = `${p.group}/${p.host}`
        if (out.deferred.has(slot)) continue
        const held = staying.get(slot)
        if (held) keepSlots.set(slot, held)
        else addSlot(out, keepSlots, job, p.group, p.host, p.host, p.hostName, now, fresh)
      }
    } else {
      const wanted = wantedSlots(job)
      for (const [slot, c] of staying) if (wanted.has(slot)) keepSlots.set(slot, c)
      // a rebalance's move goes where it was planned while that host can take it; else placement picks
      for (const [slot, replaced] of fresh.replaces) {
        const to = job.rebalance?.moves.find((m) => m.alloc === replaced)?.to
        const h = hosts.find((x) => x.id === to && x.alive)
        const [group, index] = slot.split('/') as [string, string]
        const g = job.spec.groups.find((x) => x.name === group)
        if (!h || !g || !wanted.has(slot) || !hasRoom(h, groupDemand(g))) continue
        addSlot(out, keepSlots, job, group, index, h.id, h.name, now, fresh)
      }
      if ([...wanted].some(open)) {
        const keep = [...keepSlots.values()].map((c) => ({
          group: c.alloc.group,
          index: Number(c.alloc.slot),
          host: c.alloc.host,
        }))
        const plan = place({
          job: job.spec,
          hosts,
          allocations: input.others ?? [],
          keep,
          traffic: input.traffic,
        })
        out.plan = plan
        for (const p of plan.placements) {
          const slot = `${p.group}/${p.index}`
          if (open(slot))
            addSlot(out, keepSlots, job, p.group, String(p.index), p.host, p.hostName, now, fresh)
        }
      }
    }
  }
  // adopt the slots kept from records not yet under this host's prefix
  const placed = new Set(out.puts.map((a) => a.id))
  // (and rewrite those kept in place: same allocation, the job's version)
  for (const c of keepSlots.values()) {
    if (mine.get(c.alloc.id)?.jobVersion !== c.alloc.jobVersion && !placed.has(c.alloc.id))
      out.puts.push(recordOf(c.alloc))
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

/** What a new allocation of a slot carries: its reschedule count, the allocation it replaces. */
interface Fresh {
  trackers: Map<string, RescheduleTracker>
  replaces: Map<string, string>
}

/** A new allocation for a slot, on the host placement chose. */
function addSlot(
  out: OwnerPlan,
  keepSlots: Map<string, Claim>,
  job: JobValue,
  group: string,
  slot: string,
  host: string,
  hostName: string,
  now: number,
  fresh: Fresh,
): void {
  const key = `${group}/${slot}`
  const spec = job.spec.groups.find((g) => g.name === group)
  const reschedule = fresh.trackers.get(key)
  const replaces = fresh.replaces.get(key)
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
    ...(replaces ? { replaces } : {}),
  }
  out.puts.push(alloc)
  keepSlots.set(key, { alloc, owners: [] })
}
