// The scheduler on every host, reconciled from the store: advertise this
// host's capacity, place the jobs this host owns (owner.ts), judge the
// allocations placed on this host (admission.ts) and release those that
// lost their slot. No host asks another anything: each reads the same
// records and writes only its own (allocs/<self>/, allocstate/<self>/,
// capacity/<self>). The runner (issue 13) takes admitted allocations on.
import { availableParallelism, totalmem } from 'node:os'
import type { MembersView } from '../cluster/service.js'
import { isPlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import { PassLoop, type PassLoopStatus } from '../lib/pass-loop.js'
import type { Startable } from '../lib/startable.js'
import {
  allocCodec,
  allocStateCodec,
  capacityCodec,
  healthCodec,
  netLeaseCodec,
  nodeCodec,
  trafficCodec,
} from '../store/codecs.js'
import {
  ALLOC_PREFIX,
  ALLOC_STATE_PREFIX,
  CAPACITY_PREFIX,
  DRAIN_PREFIX,
  HEALTH_PREFIX,
  JOB_PREFIX,
  type JsonValue,
  NET_LEASE_PREFIX,
  NODE_PREFIX,
  type Store,
  TRAFFIC_PREFIX,
} from '../store/types.js'
import { admit, usedBy } from './admission.js'
import { schedulerMetrics } from './metrics.js'
import { jobOwner } from './owner.js'
import { ownerPlan } from './owner-plan.js'
import type { ExistingAllocation, HostView, MeasuredTraffic } from './placement/types.js'
import {
  type AllocStateValue,
  type AllocValue,
  allocKey,
  allocStateKey,
  type CapacityValue,
  capacityKey,
  ENDED,
  ENDED_KEEP_MS,
  isDrained,
  type JobValue,
  type JobVersion,
  jobKey,
  jobOf,
  type Resources,
  submitted,
} from './records.js'
import { revertTarget } from './revert.js'
import { type Claim, claimsOf, healthGate, type PassingSince, passingSince, settle } from './settle.js'

export interface SchedulerConfig {
  /** what this host offers; default: every cpu (×1000 millicores) and all memory */
  capacity?: Partial<Resources>
}

export interface SchedulerComponents {
  store: Store
  peerId: string
  members: MembersView
  logger: Logger
  metrics: Metrics
  config: { name: string; scheduler?: SchedulerConfig }
}

/** how long after a change the pass runs (a burst of records is one pass) */
const DEBOUNCE_MS = 100
/** a pass also runs on this timer: membership changes state without a record changing */
const PERIOD_MS = 2000

/** every job's claims on its slots, from owners' records and hosts' states */
export function claimsByJob(view: SchedulerView): Map<string, Claim[]> {
  const allocs = new Map<string, { owner: string; alloc: AllocValue }[]>()
  for (const a of view.allocs) allocs.set(a.alloc.job, [...(allocs.get(a.alloc.job) ?? []), a])
  const states = new Map<string, AllocStateValue[]>()
  for (const s of view.states) states.set(s.job, [...(states.get(s.job) ?? []), s])
  const out = new Map<string, Claim[]>()
  for (const job of new Set([...allocs.keys(), ...states.keys(), ...view.jobs.keys()]))
    out.set(job, [...claimsOf(allocs.get(job) ?? [], states.get(job) ?? []).values()])
  return out
}

/** every claimed allocation as placement sees other jobs' (service affinities, anti-affinities); `except` a job */
export function existingAllocations(
  view: SchedulerView,
  claims: Map<string, Claim[]>,
  except?: string,
): ExistingAllocation[] {
  const out: ExistingAllocation[] = []
  for (const [name, list] of claims) {
    if (name === except) continue
    const service = (g: string) => view.jobs.get(name)?.spec.groups.find((x) => x.name === g)?.service?.name
    for (const c of list) {
      const s = service(c.alloc.group)
      out.push({ host: c.alloc.host, job: name, group: c.alloc.group, ...(s ? { service: s } : {}) })
    }
  }
  return out
}

/** Everything a pass reads, decoded and validated once. */
export interface SchedulerView {
  jobs: Map<string, JobValue>
  /** every alloc record: its owner (the key's writer) and value */
  allocs: { owner: string; alloc: AllocValue }[]
  states: AllocStateValue[]
  capacity: Map<string, CapacityValue>
  hosts: HostView[]
  /** peers that may own jobs: alive or suspect (a suspect owner keeps its jobs until it is declared dead) */
  owners: string[]
  /** members not declared dead (alive or suspect): their allocations hold their slots */
  live: Set<string>
  /** hosts whose capacity record says drained: their allocations move away */
  drained: Set<string>
  /** health checks passing, by allocation (a replacement whose group has checks waits for them) */
  passing: PassingSince
  /** every host's measured service-to-service traffic (traffic/ records, src/traffic) */
  traffic: MeasuredTraffic[]
}

export class SchedulerService implements Startable {
  private readonly loop: PassLoop
  private readonly metrics: ReturnType<typeof schedulerMetrics>
  /** "job/group/slot" → why it is left empty, as last logged (a waiting slot is logged once, not every pass) */
  private readonly deferred = new Map<string, string>()
  /**
   * the decoded traffic/ records as of a store index of that prefix: a pass runs every 2 s and on
   * every change, and up to 256 pairs a host are decoded again only when a summary changed, or a
   * minute on (a summary's TTL lapses without a change to the index)
   */
  private trafficRead = { index: -1, at: 0, pairs: [] as MeasuredTraffic[] }

  constructor(private readonly d: SchedulerComponents) {
    this.metrics = schedulerMetrics(d.metrics)
    this.loop = new PassLoop({
      debounceMs: DEBOUNCE_MS,
      intervalMs: PERIOD_MS,
      index: () => d.store.index,
      watch: {
        store: d.store,
        prefixes: [
          JOB_PREFIX,
          ALLOC_PREFIX,
          ALLOC_STATE_PREFIX,
          CAPACITY_PREFIX,
          NODE_PREFIX,
          DRAIN_PREFIX,
          HEALTH_PREFIX,
          // a host's new subnet or block of a named network makes it feasible for groups that join it
          NET_LEASE_PREFIX,
        ],
      },
      pass: () => this.reconcile(),
      onError: (err) => {
        this.metrics.passErrors.inc()
        d.logger.warn({ err }, 'scheduler pass failed')
      },
    })
  }

  async start(): Promise<void> {
    await this.loop.start()
  }

  async stop(): Promise<void> {
    await this.loop.stop()
  }

  status(): PassLoopStatus {
    return this.loop.status()
  }

  /** The records as this host sees them now (also what the API's job views read). */
  view(): SchedulerView {
    const { store } = this.d
    const jobs = new Map<string, JobValue>()
    for (const r of store.list(JOB_PREFIX)) {
      const j = jobOf(r)
      if (j) jobs.set(j.spec.name, j)
      else this.metrics.invalidRecords.inc()
    }
    const allocs: SchedulerView['allocs'] = []
    for (const r of store.list(ALLOC_PREFIX)) {
      const alloc = allocCodec.valueOf(r)
      if (alloc) allocs.push({ owner: r.owner, alloc })
      else this.metrics.invalidRecords.inc()
    }
    const states: AllocStateValue[] = []
    for (const r of store.list(ALLOC_STATE_PREFIX)) {
      const s = allocStateCodec.valueOf(r)
      if (s) states.push(s)
      else this.metrics.invalidRecords.inc()
    }
    const capacity = new Map<string, CapacityValue>()
    for (const r of store.list(CAPACITY_PREFIX)) {
      const c = capacityCodec.valueOf(r)
      if (c) capacity.set(r.owner, c)
    }
    // netleases/<peer>/<network>: what each host can attach a group's named networks to
    const networks = new Map<string, string[]>()
    for (const r of store.list(NET_LEASE_PREFIX)) {
      const name = r.key.split('/')[2]
      if (!name || !netLeaseCodec.valueOf(r)) continue
      networks.set(r.owner, [...(networks.get(r.owner) ?? []), name])
    }
    const members = this.d.members.hosts()
    const hosts: HostView[] = []
    for (const m of members) {
      const rec = store.get(`${NODE_PREFIX}${m.peerId}`)
      const node = rec && nodeCodec.valueOf(rec)
      const cap = capacity.get(m.peerId)
      hosts.push({
        id: m.peerId,
        name: m.name,
        address: m.address,
        // a host that advertises no capacity (an older agent) or is drained takes no placements
        alive: m.state === 'alive' && cap !== undefined && cap.eligible,
        labels: m.labels,
        capacity: cap?.total ?? { cpu: 0, memoryMb: 0 },
        used: cap?.used ?? { cpu: 0, memoryMb: 0 },
        networks: networks.get(m.peerId) ?? [],
        ...(node?.coordinate ? { coordinate: node.coordinate } : {}),
      })
    }
    const owners = members.filter((m) => m.state !== 'dead').map((m) => m.peerId)
    // a suspect host (a late heartbeat: load, a short partition) keeps its slots until it is
    // declared dead, as it keeps its jobs: else each hiccup places a slot twice and stops one
    const live = new Set(owners)
    const drained = new Set([...capacity].filter(([, c]) => !c.eligible).map(([peer]) => peer))
    const passing = passingSince(
      store.list(HEALTH_PREFIX).flatMap((r) => {
        const h = healthCodec.valueOf(r)
        return h ? [{ ...h, at: r.version.wall }] : []
      }),
    )
    const traffic = this.traffic()
    return { jobs, allocs, states, capacity, hosts, owners, live, drained, passing, traffic }
  }

  /** every host's measured pairs (traffic/ records), read again only when one changed */
  private traffic(): MeasuredTraffic[] {
    const { store } = this.d
    const index = store.prefixIndex(TRAFFIC_PREFIX)
    const now = Date.now()
    if (index !== this.trafficRead.index || now - this.trafficRead.at > 60_000)
      this.trafficRead = {
        index,
        at: now,
        pairs: store.list(TRAFFIC_PREFIX).flatMap((r) => trafficCodec.valueOf(r)?.pairs ?? []),
      }
    return this.trafficRead.pairs
  }

  private async reconcile(): Promise<void> {
    const view = this.view()
    const claims = claimsByJob(view)
    await this.judge(view, claims)
    await this.own(view, claims)
    await this.advertise(this.view())
  }

  /** Admission and release of the allocations placed on this host. */
  private async judge(view: SchedulerView, claimsByJob: Map<string, Claim[]>): Promise<void> {
    const { store, peerId: self, logger } = this.d
    const cap = this.capacityTotal()
    const mine = view.states.filter((s) => s.host === self)
    const byId = new Map(mine.map((s) => [s.id, s]))
    const offered: AllocValue[] = []
    const now = Date.now()
    for (const [name, claims] of claimsByJob) {
      const job = view.jobs.get(name)
      const verdicts = settle(
        claims,
        view.live,
        job?.spec.type === 'batch',
        healthGate(job, now, view.passing),
        job?.version,
      )
      // a replacement being brought up runs beside the allocation it replaces: both are kept
      const winners = new Set(
        [...verdicts.values()].flatMap((v) => [
          v.winner.alloc.id,
          ...(v.incoming ? [v.incoming.alloc.id] : []),
        ]),
      )
      for (const c of claims) {
        if (c.alloc.host !== self) continue
        const placedByOwner = c.owners.length > 0
        if (placedByOwner && winners.has(c.alloc.id) && !byId.has(c.alloc.id)) offered.push(c.alloc)
        // released: the job is gone or stopped, or another claim won the slot; an allocation
        // that ended (failed, with its reason) stays visible while its owner keeps its record
        // (the slot waits to be placed again, or was given up) and a while after its slot moved on
        const state = byId.get(c.alloc.id)
        const shown =
          state !== undefined &&
          ENDED.has(state.status) &&
          (placedByOwner || now - state.updatedAt < ENDED_KEEP_MS)
        if (state && (!job || job.stopped || (!winners.has(c.alloc.id) && !shown))) {
          await store.delete(allocStateKey(self, state.id))
          logger.info({ alloc: state.id, job: name }, 'allocation released')
        } else if (state && placedByOwner && c.alloc.jobVersion > state.jobVersion) {
          await this.keptInPlace(state.id, c.alloc.jobVersion)
        }
      }
    }
    if (offered.length === 0) return
    const verdict = admit({ total: cap, eligible: this.eligible(), states: mine, offered })
    for (const a of verdict.admitted) {
      await store.put(
        allocStateKey(self, a.id),
        allocStateCodec.encode({ ...a, status: 'admitted', updatedAt: now }),
      )
      this.metrics.allocations.inc({ result: 'admitted' })
    }
    for (const { alloc, reason } of verdict.rejected) {
      await store.put(
        allocStateKey(self, alloc.id),
        allocStateCodec.encode({ ...alloc, status: 'rejected', reason, updatedAt: now }),
      )
      this.metrics.allocations.inc({ result: 'rejected' })
      logger.info({ alloc: alloc.id, reason }, 'allocation rejected')
    }
  }

  /**
   * The owner kept an allocation in place for a newer version of its job
   * (owner-plan.ts keepInPlace): its state says so too, so listings and the
   * next update see the version it now is. Read again and compare-and-set,
   * so a runner's transition written meanwhile is not overwritten (the next
   * pass tries again).
   */
  private async keptInPlace(id: string, jobVersion: number): Promise<void> {
    const { store, peerId: self } = this.d
    const key = allocStateKey(self, id)
    const rec = store.get(key)
    const state = rec && allocStateCodec.valueOf(rec)
    if (!state || state.jobVersion >= jobVersion) return
    try {
      await store.put(key, allocStateCodec.encode({ ...state, jobVersion }), { cas: store.modifyIndex(key) })
      this.d.logger.info({ alloc: id, job: state.job, jobVersion }, 'allocation kept in place')
    } catch (err) {
      if (!isPlexusError(err, 'PLX_STORE_CAS_FAILED')) throw err
    }
  }

  /**
   * A failed rolling update goes back (autoRevert): the version it was replacing is submitted again
   * as the next version, compare-and-set against the record this pass read, so a submission that
   * came meanwhile wins and nothing is reverted twice.
   */
  private async revert(job: JobValue, to: JobVersion, reason: string): Promise<boolean> {
    const { store, logger } = this.d
    const key = jobKey(job.spec.name)
    const rec = store.get(key)
    if (!rec || jobOf(rec)?.version !== job.version) return false
    const value = submitted(job, to.spec, new Date().toISOString())
    if (!value) return false
    try {
      await store.put(key, value as unknown as JsonValue, { cas: store.modifyIndex(key) })
      this.metrics.reverts.inc()
      logger.warn(
        { job: job.spec.name, from: job.version, to: to.version, version: value.version, reason },
        'rolling update failed: reverted',
      )
      return true
    } catch (err) {
      logger.debug({ err, job: job.spec.name }, 'job changed meanwhile: not reverted')
      return false
    }
  }

  /** Placement for the jobs this host owns; cleanup of records for jobs it no longer owns. */
  private async own(view: SchedulerView, claimsByJob: Map<string, Claim[]>): Promise<void> {
    const { store, peerId: self, logger } = this.d
    const others = existingAllocations(view, claimsByJob)
    const now = Date.now()
    let deferred = 0
    const owned = new Set<string>()
    for (const [name, job] of view.jobs) {
      const owner = jobOwner(name, view.owners)
      if (owner !== self) continue
      owned.add(name)
      const plan = ownerPlan({
        self,
        job,
        hosts: view.hosts,
        live: view.live,
        drained: view.drained,
        claims: claimsByJob.get(name) ?? [],
        others: others.filter((o) => o.job !== name),
        passing: view.passing,
        traffic: view.traffic,
        now,
      })
      const revert = revertTarget(job, claimsByJob.get(name) ?? [], plan.verdicts, now)
      // reverted: this pass's writes were for the version that failed; the next pass places the new one
      if (revert && (await this.revert(job, revert.to, revert.reason))) continue
      for (const a of plan.puts) await store.put(allocKey(self, a), allocCodec.encode(a))
      for (const slot of plan.deletes) await store.delete(`${ALLOC_PREFIX}${self}/${name}/${slot}`)
      if (plan.puts.length || plan.deletes.length)
        logger.info({ job: name, placed: plan.puts.length, removed: plan.deletes.length }, 'job placed')
      this.logDeferred(name, plan.deferred)
      deferred += plan.deferred.size
      for (const f of plan.plan?.failures ?? []) {
        this.metrics.placementFailures.inc()
        logger.warn({ job: name, group: f.group, slot: f.index, reason: f.reason }, 'slot not placed')
      }
    }
    this.metrics.deferredSlots.set(deferred)
    for (const key of this.deferred.keys())
      if (!owned.has(key.split('/')[0] as string)) this.deferred.delete(key)
    // this host's records of jobs it no longer owns: dropped when the job is gone, or once the
    // current owner has written the slot (adopted or placed anew), so no slot is ever unclaimed
    const held = new Set(view.allocs.map((x) => `${x.owner}/${x.alloc.job}/${x.alloc.group}/${x.alloc.slot}`))
    for (const { owner, alloc } of view.allocs) {
      if (owner !== self) continue
      if (view.jobs.has(alloc.job)) {
        const current = jobOwner(alloc.job, view.owners)
        if (current === self || !held.has(`${current}/${alloc.job}/${alloc.group}/${alloc.slot}`)) continue
      }
      await store.delete(allocKey(self, alloc))
    }
  }

  private logDeferred(job: string, deferred: Map<string, { reason: string }>): void {
    for (const key of this.deferred.keys())
      if (key.startsWith(`${job}/`) && !deferred.has(key.slice(job.length + 1))) this.deferred.delete(key)
    for (const [slot, { reason }] of deferred) {
      const key = `${job}/${slot}`
      if (this.deferred.get(key) === reason) continue
      this.deferred.set(key, reason)
      this.d.logger.warn({ job, slot, reason }, 'failed slot not placed again yet')
    }
  }

  /** capacity/<self>: what this host offers and what its holding allocations use. */
  private async advertise(view: SchedulerView): Promise<void> {
    const { store, peerId: self } = this.d
    const value: CapacityValue = {
      total: this.capacityTotal(),
      used: usedBy(view.states.filter((s) => s.host === self)),
      eligible: this.eligible(),
    }
    const current = view.capacity.get(self)
    if (current && JSON.stringify(current) === JSON.stringify(value)) return
    await store.put(capacityKey(self), capacityCodec.encode(value))
  }

  private capacityTotal(): Resources {
    const c = this.d.config.scheduler?.capacity
    return {
      cpu: c?.cpu ?? availableParallelism() * 1000,
      memoryMb: c?.memoryMb ?? Math.round(totalmem() / 2 ** 20),
    }
  }

  /** false while an operator has drained this host (config/drain/<name>, written by `plexctl hosts drain`) */
  private eligible(): boolean {
    return !isDrained(this.d.store, this.d.config.name)
  }
}
