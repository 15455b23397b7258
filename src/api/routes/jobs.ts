// Jobs: submit, plan (dry run), list, inspect, stop.
//   PUT    /v1/jobs              body {text} (YAML or JSON, every problem with its line) or {spec};
//                                 422 PLX_JOB_UNPLACEABLE when no host could ever take a group (feasible.ts)
//   POST   /v1/jobs/plan         same body: the placement and why, nothing written
//   GET    /v1/jobs              one line per job
//   GET    /v1/jobs/:name        the job, its owner and every allocation with its host's verdict
//   GET    /v1/jobs/:name/history  the versions kept in the job record, newest first
//   GET    /v1/jobs/:name/explain  where it runs, every host's verdict, the network cost now and placed afresh
//   POST   /v1/jobs/:name/rebalance  body {dryRun?}: the same, and the moves handed to the owner
//   DELETE /v1/jobs/:name        stop: the owner removes the allocations ([?purge] also drops the job)
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { namedNetworks } from '../../ipam/network.js'
import { PlexusError } from '../../lib/errors.js'
import { unplaceable } from '../../scheduler/feasible.js'
import { jobOwner } from '../../scheduler/owner.js'
import { ownerPlan } from '../../scheduler/owner-plan.js'
import { type RunningSlot, rebalance } from '../../scheduler/rebalance.js'
import {
  type AllocStatus,
  HOLDING,
  type JobValue,
  type JobVersion,
  jobKey,
  jobOf,
  submitted,
} from '../../scheduler/records.js'
import {
  claimsByJob,
  existingAllocations,
  type SchedulerService,
  type SchedulerView,
} from '../../scheduler/service.js'
import { claimsOf } from '../../scheduler/settle.js'
import { type JobSpec, parseJobText, type SpecContext, validateJob } from '../../scheduler/spec.js'
import type { JsonValue, ReadableStore, Store } from '../../store/types.js'
import { NameParam } from '../contract/common.js'
import {
  JobDetail,
  JobHistoryReply,
  JobPlanReply,
  JobRebalanceBody,
  JobRebalanceReply,
  JobStopQuery,
  JobStopReply,
  JobSubmitBody,
  JobSubmitReply,
  JobsReply,
} from '../contract/jobs.js'
import type { ApiDeps } from '../deps.js'

/** the spec of a submit or plan body, its group `networks` looked up in config/networks/ */
function specOf(body: JobSubmitBody | undefined, store: ReadableStore): JobSpec {
  const ctx: SpecContext = { networks: new Map(namedNetworks(store).map((n) => [n.name, n.driver])) }
  if (body?.text !== undefined && body.spec === undefined) return parseJobText(body.text, 'job', ctx)
  if (body?.spec !== undefined && body.text === undefined) return validateJob(body.spec, ctx)
  throw new PlexusError(
    'PLX_API_BAD_REQUEST',
    'give the job as exactly one of "text" (YAML or JSON) or "spec"',
  )
}

/** the store refused a compare-and-set: someone wrote the key since it was read */
const isCasConflict = (err: unknown): boolean =>
  err instanceof PlexusError && /cas|compare/i.test(`${err.code} ${err.message}`)

/** Writes jobs/<name> (records.ts `submitted`); compare-and-set so two submitters cannot both be version N. */
async function submit(store: Store, spec: JobSpec): Promise<JobValue> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const key = jobKey(spec.name)
    const rec = store.get(key)
    // a job record that does not decode (from gossip) is replaced as if there were none
    const current = rec && jobOf(rec)
    const value = submitted(current, spec, new Date().toISOString())
    if (!value) return current as JobValue
    try {
      await store.put(key, value as unknown as JsonValue, { cas: rec ? store.modifyIndex(key) : 0 })
      return value
    } catch (err) {
      if (!isCasConflict(err)) throw err
    }
  }
  throw new PlexusError(
    'PLX_JOB_CONFLICT',
    `job "${spec.name}" is being changed by someone else: try again`,
    {
      status: 409,
    },
  )
}

/** every claim on a job's slots, from owners' records and hosts' states */
const jobClaims = (view: SchedulerView, name: string) =>
  claimsOf(
    view.allocs.filter((a) => a.alloc.job === name),
    view.states.filter((s) => s.job === name),
  )

function allocationsOf(view: SchedulerView, name: string) {
  return [...jobClaims(view, name).values()]
    .map((c) => ({
      id: c.alloc.id,
      group: c.alloc.group,
      slot: c.alloc.slot,
      host: c.alloc.host,
      hostName: c.alloc.hostName,
      jobVersion: c.alloc.jobVersion,
      // a host that is not alive cannot say: its allocation is lost until its records go or it returns
      status: view.live.has(c.alloc.host) ? (c.state?.status ?? 'placed') : 'lost',
      ...(c.state?.reason ? { reason: c.state.reason } : {}),
      ...(c.state?.restarts !== undefined ? { restarts: c.state.restarts } : {}),
      ...(c.state?.address ? { address: c.state.address } : {}),
      owners: c.owners,
    }))
    .sort(
      (a, b) => a.group.localeCompare(b.group) || a.slot.localeCompare(b.slot) || a.id.localeCompare(b.id),
    )
}

/** what the /v1/jobs routes read (registered with that prefix, only where the scheduler runs) */
export type JobsComponents = Pick<ApiDeps, 'store' | 'peerId'> & { scheduler: SchedulerService }

export const jobRoutes: FastifyPluginAsyncTypebox<JobsComponents> = async (app, deps) => {
  const { scheduler } = deps
  const { store } = deps
  const notFound = (name: string) => new PlexusError('PLX_JOB_NOT_FOUND', `no job "${name}"`, { status: 404 })

  app.put('', { schema: { body: JobSubmitBody, response: { 200: JobSubmitReply } } }, async (req) => {
    const spec = specOf(req.body, store)
    const reasons = unplaceable(spec, scheduler.view().hosts)
    if (reasons.length)
      throw new PlexusError(
        'PLX_JOB_UNPLACEABLE',
        `job "${spec.name}" cannot be placed on this cluster (nothing written): ${reasons.join('; ')}`,
        { status: 422 },
      )
    const job = await submit(store, spec)
    return { name: job.spec.name, version: job.version }
  })

  app.post('/plan', { schema: { body: JobSubmitBody, response: { 200: JobPlanReply } } }, async (req) => {
    const spec = specOf(req.body, store)
    const view = scheduler.view()
    const current = view.jobs.get(spec.name)
    const job: JobValue = {
      spec,
      version: (current?.version ?? 0) + 1,
      submittedAt: new Date().toISOString(),
      stopped: false,
    }
    const claims = jobClaims(view, spec.name)
    const self = jobOwner(spec.name, view.owners) ?? deps.peerId
    const plan = ownerPlan({
      self,
      job,
      hosts: view.hosts,
      live: view.live,
      claims: claims.values(),
      others: existingAllocations(view, claimsByJob(view), spec.name),
      traffic: view.traffic,
      now: Date.now(),
    })
    return {
      job: spec.name,
      owner: self,
      place: plan.puts.map((a) => ({ group: a.group, slot: a.slot, host: a.host, hostName: a.hostName })),
      remove: plan.deletes,
      ...(plan.plan ? { explanation: plan.plan } : {}),
    }
  })

  app.get('', { schema: { response: { 200: JobsReply } } }, async () => {
    const view = scheduler.view()
    return [...view.jobs.values()]
      .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
      .map((j) => {
        const allocs = allocationsOf(view, j.spec.name)
        return {
          name: j.spec.name,
          type: j.spec.type,
          version: j.version,
          stopped: j.stopped,
          owner: view.hosts.find((h) => h.id === jobOwner(j.spec.name, view.owners))?.name ?? null,
          wanted: j.stopped ? 0 : j.spec.groups.reduce((n, g) => n + g.count, 0),
          placed: allocs.filter((a) => a.status !== 'rejected' && a.status !== 'lost').length,
          admitted: allocs.filter((a) => HOLDING.has(a.status as AllocStatus)).length,
        }
      })
  })

  app.get('/:name', { schema: { params: NameParam, response: { 200: JobDetail } } }, async (req) => {
    const view = scheduler.view()
    const job = view.jobs.get(req.params.name)
    if (!job) throw notFound(req.params.name)
    const owner = jobOwner(job.spec.name, view.owners)
    return {
      job,
      owner: owner ? { peer: owner, name: view.hosts.find((h) => h.id === owner)?.name } : null,
      allocations: allocationsOf(view, job.spec.name),
    }
  })

  /** the job's placement now and afresh (rebalance.ts), or 404 */
  const balance = (name: string) => {
    const view = scheduler.view()
    const job = view.jobs.get(name)
    if (!job || job.stopped) throw notFound(name)
    const claims = claimsByJob(view)
    const running: RunningSlot[] = []
    const taken = new Set<string>()
    for (const c of claims.get(name) ?? []) {
      const slot = `${c.alloc.group}/${c.alloc.slot}`
      if (!view.live.has(c.alloc.host) || !HOLDING.has(c.state?.status as AllocStatus) || taken.has(slot))
        continue
      taken.add(slot)
      const { id, group, slot: s, host, hostName, resources } = c.alloc
      running.push({ id, group, slot: s, host, hostName, resources })
    }
    const r = rebalance({
      job: job.spec,
      hosts: view.hosts,
      others: existingAllocations(view, claims, name),
      traffic: view.traffic,
      running,
    })
    return { job, running, r }
  }
  const reply = (b: ReturnType<typeof balance>, applied: boolean) => ({
    job: b.job.spec.name,
    running: b.running.map(({ id, group, slot, hostName }) => ({ id, group, slot, hostName })),
    costNow: b.r.costNow,
    costAfter: b.r.costAfter,
    moves: b.r.moves,
    applied,
    explanation: b.r.plan,
  })

  app.get(
    '/:name/explain',
    { schema: { params: NameParam, response: { 200: JobRebalanceReply } } },
    async (req) => reply(balance(req.params.name), false),
  )

  app.post(
    '/:name/rebalance',
    { schema: { params: NameParam, body: JobRebalanceBody, response: { 200: JobRebalanceReply } } },
    async (req) => {
      const b = balance(req.params.name)
      if (req.body?.dryRun || !b.r.moves.length) return reply(b, false)
      const key = jobKey(b.job.spec.name)
      const value = {
        ...b.job,
        rebalance: {
          at: new Date().toISOString(),
          moves: b.r.moves.map((m) => ({ alloc: m.id, to: m.toPeer })),
        },
      }
      try {
        // against the version read: a job changed meanwhile is planned again by its caller
        await store.put(key, value as unknown as JsonValue, { cas: store.modifyIndex(key) })
      } catch (err) {
        if (!isCasConflict(err)) throw err
        throw new PlexusError('PLX_JOB_CONFLICT', `job "${b.job.spec.name}" changed meanwhile: try again`, {
          status: 409,
        })
      }
      return reply(b, true)
    },
  )

  app.get(
    '/:name/history',
    { schema: { params: NameParam, response: { 200: JobHistoryReply } } },
    async (req) => {
      const job = scheduler.view().jobs.get(req.params.name)
      if (!job) throw notFound(req.params.name)
      const line = (v: JobVersion, current: boolean) => ({
        version: v.version,
        submittedAt: v.submittedAt,
        current,
        spec: v.spec,
      })
      return [line(job, true), ...[...(job.history ?? [])].reverse().map((v) => line(v, false))]
    },
  )

  app.delete(
    '/:name',
    { schema: { params: NameParam, querystring: JobStopQuery, response: { 200: JobStopReply } } },
    async (req) => {
      const key = jobKey(req.params.name)
      const job = scheduler.view().jobs.get(req.params.name)
      if (!job) throw notFound(req.params.name)
      if (req.query.purge !== undefined) await store.delete(key)
      else await store.put(key, { ...job, stopped: true } as unknown as JsonValue)
      return { name: req.params.name, stopped: true, purged: req.query.purge !== undefined }
    },
  )
}
