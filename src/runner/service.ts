// The runner on every host, reconciled from the store: the allocations the
// scheduler admitted on this host (allocstate/<self>/…) are set up (network
// namespace, CNI ADD), their tasks started through a driver, watched,
// restarted per the group's policy, and stopped with nothing left once the
// allocation is released. Decisions are lifecycle.ts's (pure); this file
// observes, acts and writes the allocation's life back to its allocstate
// record. Tasks outlive the agent: a new agent adopts them from the state dir.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ZONE_ORIGIN } from '../dns/service.js'
import { appApiEnv } from '../ipam/leases.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import { writeFileAtomic } from '../lib/fs.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import { PassLoop, type PassLoopStatus } from '../lib/pass-loop.js'
import { signalOwn } from '../lib/proc.js'
import type { Startable } from '../lib/startable.js'
import type { LinkService } from '../ports/link-service.js'
import { type LinkSpec, parseLinkSpec } from '../ports/links.js'
import { type AllocStateValue, type AllocTaskState, jobOf } from '../scheduler/records.js'
import type { GroupSpec, TaskSpec } from '../scheduler/spec.js'
import { buildCatalog, catalogInput } from '../services/catalog.js'
import { allocStateCodec } from '../store/codecs.js'
import { ALLOC_STATE_PREFIX, JOB_PREFIX, type Store } from '../store/types.js'
import { type Driver, DriverRegistry, type ExecLimits, type ExecResult, type TaskLaunch } from './driver.js'
import { ExecDriver } from './exec/driver.js'
import { DEFAULT_PATH } from './exec/launch.js'
import {
  afterEnd,
  allocSummary,
  isFinal,
  newTask,
  nextAction,
  type Outcome,
  resolvePolicy,
  type TaskRecord,
} from './lifecycle.js'
import { runnerMetrics } from './metrics.js'
import {
  attachCalls,
  type CniConfig,
  cni,
  createNetns,
  deleteNetns,
  interfacesOf,
  nameArgs,
  netnsName,
  netnsPath,
  resolvConfText,
  resultAddress,
} from './network.js'
import type { PodmanConfig } from './podman/args.js'
import { PodmanDriver } from './podman/driver.js'
import {
  type Attached,
  allocDir,
  type LocalAlloc,
  loadAllocs,
  removeAlloc,
  saveAlloc,
  taskDir,
} from './state.js'
import { talksToEnv } from './talks-to.js'
import { TemplateFiles } from './template-files.js'
import { changeAction, TASK_LOCAL_MOUNT, taskTemplates, templatePrefixes } from './templates.js'

export interface RunnerConfig {
  /** default true; false: admitted allocations are not started on this host */
  enabled?: boolean
  /** where the `plexus` CNI plugin is installed (CNI_PATH), default ["/opt/cni/bin"] */
  cniPath?: string[]
  /** per task: each log file at most maxBytes (default 1 MiB), at most files of them (default 3) */
  logs?: { maxBytes?: number; files?: number }
  /** the podman driver's executable and storage (src/runner/podman/args.ts) */
  podman?: PodmanConfig
}

export interface RunnerComponents {
  store: Store
  peerId: string
  logger: Logger
  metrics: Metrics
  config: { name: string; stateDir: string; api: { socket: string; appPort?: number }; runner?: RunnerConfig }
  /** drivers to use instead of the built-in ones (tests) */
  drivers?: Driver[]
  /** the ports module's links: a group's `links` become its tasks' variables and hosts entries */
  links?: Pick<LinkService, 'add' | 'env' | 'remove'>
}

/** a change is acted on after this (a burst of records is one pass) */
const DEBOUNCE_MS = 50
/** tasks are observed this often: an exit is noticed within it */
const PERIOD_MS = 1000
const DEFAULT_PIDS = 1024
const DEFAULT_KILL_TIMEOUT_MS = 5000
/**
 * A change to what a task's templates read is rendered this long after it, however many follow
 * (a pending pass is not put off): a burst of writes gives a render every 400 ms at most
 */
const TEMPLATE_DEBOUNCE_MS = 400
/** a task whose template cannot render yet (a missing key) is tried again after this, or on a change */
const TEMPLATE_RETRY_MS = 1000
const MAX_REASON = 1000

export class RunnerService implements Startable {
  private readonly drivers = new DriverRegistry()
  private readonly allocs = new Map<string, LocalAlloc>()
  private readonly metrics: ReturnType<typeof runnerMetrics>
  private readonly loop: PassLoop
  private readonly templates: TemplateFiles

  constructor(private readonly d: RunnerComponents) {
    this.metrics = runnerMetrics(d.metrics)
    this.loop = new PassLoop({
      debounceMs: DEBOUNCE_MS,
      intervalMs: PERIOD_MS,
      index: () => d.store.index,
      watch: { store: d.store, prefixes: [`${ALLOC_STATE_PREFIX}${d.peerId}/`, JOB_PREFIX] },
      pass: () => this.reconcile(),
      onError: (err) => {
        this.metrics.passErrors.inc()
        d.logger.warn({ err }, 'runner pass failed')
      },
    })
    for (const drv of d.drivers ?? [new ExecDriver(), new PodmanDriver(d.config.runner?.podman)])
      this.drivers.register(drv)
    this.templates = new TemplateFiles(
      d.store,
      d.peerId,
      () => this.loop.trigger(TEMPLATE_DEBOUNCE_MS),
      this.metrics.templateRenders,
    )
  }

  async start(): Promise<void> {
    const { allocs, unreadable } = await loadAllocs(this.d.config.stateDir)
    for (const a of allocs) {
      this.allocs.set(a.id, a)
      await this.adopt(a)
    }
    if (unreadable.length)
      this.d.logger.warn({ dirs: unreadable }, 'runner: unreadable allocation records skipped')
    await this.loop.start()
  }

  /** What a previous agent started and still runs is kept as it is: no second process, no second CNI ADD. */
  private async adopt(a: LocalAlloc): Promise<void> {
    if (a.final) return
    for (const t of a.tasks) {
      const spec = a.spec.tasks.find((s) => s.name === t.name)
      if (t.state !== 'running' || !t.handle || !spec) continue
      const seen = await this.drivers.get(spec.driver).inspect(this.launch(a, spec, a), t.handle)
      if (seen.state !== 'running') continue
      this.metrics.adopted.inc()
      this.d.logger.info({ alloc: a.id, task: t.name, pid: t.handle.pid }, 'task adopted')
    }
  }

  /** Stops the loop only: tasks keep running for the next agent to adopt. */
  async stop(): Promise<void> {
    await this.loop.stop()
    this.templates.stop()
  }

  status(): PassLoopStatus & { allocations: number } {
    return { ...this.loop.status(), allocations: this.allocs.size }
  }

  /** The allocation as this host runs it (undefined: not here). */
  local(id: string): LocalAlloc | undefined {
    return this.allocs.get(id)
  }

  /** where a task's logs are (multilog's directory) */
  logDir(id: string, task: string): string {
    return `${taskDir(this.d.config.stateDir, id, task)}/logs`
  }

  /** allocstate/<self>/… that should run here, each with its group's spec (a stopped or unknown job runs nothing). */
  private desired(): Map<string, { state: AllocStateValue; group: GroupSpec }> {
    const { store, peerId } = this.d
    const out = new Map<string, { state: AllocStateValue; group: GroupSpec }>()
    for (const r of store.list(`${ALLOC_STATE_PREFIX}${peerId}/`)) {
      const state = allocStateCodec.valueOf(r)
      if (!state || state.status === 'rejected') continue
      const rec = store.get(`${JOB_PREFIX}${state.job}`)
      const job = rec && jobOf(rec)
      const group = job && !job.stopped ? job.spec.groups.find((g) => g.name === state.group) : undefined
      if (group) out.set(state.id, { state, group })
    }
    return out
  }

  private async reconcile(): Promise<void> {
    const desired = this.desired()
    const rerender = this.templates.takeDirty()
    for (const [id, local] of this.allocs) {
      if (desired.has(id)) continue
      await this.release(local)
      await removeAlloc(this.d.config.stateDir, id)
      this.allocs.delete(id)
      this.d.logger.info({ alloc: id }, 'allocation stopped and removed')
    }
    // allocations are independent: one's CNI ADD or grace period does not hold up the others
    await Promise.all(
      [...desired].map(([id, want]) => this.reconcileOne(id, want.state, want.group, rerender)),
    )
    // what the templates of the tasks still to run read: a change there brings the next pass forward
    this.templates.watch(
      [...this.allocs.values()]
        .filter((a) => !a.final)
        .flatMap((a) => a.spec.tasks.flatMap((t) => templatePrefixes(taskTemplates(t)))),
    )
  }

  private async reconcileOne(
    id: string,
    state: AllocStateValue,
    group: GroupSpec,
    rerender: boolean,
  ): Promise<void> {
    let local = this.allocs.get(id)
    if (!local) {
      // an allocation that ended before this host kept a record of it (a wiped state dir) is not run again
      if (isFinal(state.status)) return
      const now = Date.now()
      local = {
        id,
        job: state.job,
        group: state.group,
        spec: group,
        netns: netnsName(id),
        tasks: group.tasks.map((t) => newTask(t.name, now)),
        released: false,
      }
      this.allocs.set(id, local)
      // recorded before its namespace exists: an agent killed half-way leaves nothing unnamed behind
      await saveAlloc(this.d.config.stateDir, local)
    }
    const before = JSON.stringify(local)
    if (!local.final) await this.advance(local, state, rerender)
    if (JSON.stringify(local) !== before) await saveAlloc(this.d.config.stateDir, local)
    await this.report(local, state)
  }

  /**
   * Attach the network, observe and start tasks, settle the allocation's status; release it once final.
   * rerender: what templates read changed, so running tasks' templates are rendered again.
   */
  private async advance(a: LocalAlloc, state: AllocStateValue, rerender: boolean): Promise<void> {
    if (!a.cni) {
      try {
        a.cni = await this.attach(a, await createNetns(a.netns))
        delete a.setupError
        this.d.logger.info(
          {
            alloc: a.id,
            netns: a.netns,
            address: a.cni.address,
            interfaces: 1 + (a.cni.further?.length ?? 0),
          },
          'allocation attached',
        )
      } catch (err) {
        a.setupError = `network: ${errorMessage(err)}`
        return
      }
    }
    const policy = resolvePolicy(a.spec.restart)
    for (const [i, t] of a.tasks.entries()) {
      const spec = a.spec.tasks.find((s) => s.name === t.name)
      if (!spec) continue
      let rec = t
      if (rec.state === 'running' && rec.handle) {
        const drv = this.drivers.get(spec.driver)
        const seen = await drv.inspect(this.launch(a, spec, state), rec.handle)
        if (seen.state !== 'running') {
          const outcome: Outcome = seen.state === 'gone' ? { kind: 'gone' } : { kind: 'exited', ...seen }
          this.metrics.taskExits.inc({
            outcome: seen.state === 'gone' ? 'gone' : seen.exitCode === 0 ? 'success' : 'failure',
          })
          rec = afterEnd(rec, outcome, policy, Date.now())
          this.d.logger.info(
            { alloc: a.id, task: t.name, state: rec.state, reason: rec.reason },
            'task ended',
          )
        }
      }
      if (rerender && rec.state === 'running' && spec.templates?.length)
        rec = await this.refreshTemplates(a, spec, state, rec)
      if (nextAction(rec, Date.now()).kind === 'start') {
        const ready = await this.writeTemplates(a, spec, rec)
        rec = ready === true ? await this.startTask(a, spec, state, rec, policy) : ready
      }
      a.tasks[i] = rec
    }
    const summary = allocSummary(a.tasks, true)
    if (isFinal(summary.status)) {
      a.final = { status: summary.status, ...(summary.reason ? { reason: summary.reason } : {}) }
      this.d.logger.info({ alloc: a.id, status: summary.status, reason: summary.reason }, 'allocation ended')
      await this.release(a)
    }
  }

  private async startTask(
    a: LocalAlloc,
    spec: TaskSpec,
    state: AllocStateValue,
    rec: TaskRecord,
    policy: ReturnType<typeof resolvePolicy>,
  ): Promise<TaskRecord> {
    const base = this.startLaunch(a, spec, state)
    const drv = this.drivers.get(spec.driver)
    try {
      const resolvConf = await this.writeResolvConf(a)
      const hosts = await this.linkHosts(a)
      const launch = { ...base, ...(resolvConf ? { resolvConf } : {}), ...(hosts ? { hosts } : {}) }
      // a restart: the previous run's cgroups may still hold what it forked
      await drv.destroy(launch)
      const handle = await drv.start(launch)
      this.metrics.taskStarts.inc({ result: 'ok' })
      this.d.logger.info(
        { alloc: a.id, task: spec.name, pid: handle.pid, restarts: rec.restarts },
        'task started',
      )
      const { startAt: _, ...rest } = rec
      return { ...rest, state: 'running', handle }
    } catch (err) {
      this.metrics.taskStarts.inc({ result: 'failed' })
      this.d.logger.warn({ alloc: a.id, task: spec.name, err: errorMessage(err) }, 'task could not start')
      return afterEnd(rec, { kind: 'start-failed', reason: errorMessage(err) }, policy, Date.now())
    }
  }

  /**
   * A task's templates rendered before it starts: true when every file is written, else the task's
   * record waiting (pending, the reason naming the missing key) to be tried again: a template that
   * cannot render holds the task back instead of starting it with an empty value, and does not count
   * against its restart policy.
   */
  private async writeTemplates(a: LocalAlloc, spec: TaskSpec, rec: TaskRecord): Promise<true | TaskRecord> {
    if (!spec.templates?.length) return true
    try {
      await this.templates.write(spec, taskDir(this.d.config.stateDir, a.id, spec.name))
      return true
    } catch (err) {
      const reason = `template: ${errorMessage(err)}`
      if (rec.reason !== reason) this.d.logger.warn({ alloc: a.id, task: spec.name, reason }, 'task waits')
      return { ...rec, reason, startAt: Date.now() + TEMPLATE_RETRY_MS }
    }
  }

  /**
   * A running task's templates rendered again after a change to what they read; a file whose content
   * changed gets its template's changeMode once: the task restarted (stopped, then started at once in
   * this pass, not counted against its restart policy), signalled, or left alone. A template that
   * cannot render now (a key deleted) leaves the file as it was.
   */
  private async refreshTemplates(
    a: LocalAlloc,
    spec: TaskSpec,
    state: AllocStateValue,
    rec: TaskRecord,
  ): Promise<TaskRecord> {
    let changed: Set<string>
    try {
      changed = await this.templates.write(spec, taskDir(this.d.config.stateDir, a.id, spec.name))
    } catch (err) {
      this.d.logger.warn(
        { alloc: a.id, task: spec.name, err: errorMessage(err) },
        'template not rendered: the task keeps the files it has',
      )
      return rec
    }
    const act = changeAction(taskTemplates(spec), changed)
    if (act.kind === 'none' || !rec.handle) return rec
    this.d.logger.info({ alloc: a.id, task: spec.name, files: [...changed], action: act }, 'template changed')
    if (act.kind === 'signal') {
      for (const sig of act.signals) signalOwn(rec.handle.pid, rec.handle.startTime, sig as NodeJS.Signals)
      return rec
    }
    await this.drivers
      .get(spec.driver)
      .stop(this.launch(a, spec, state), rec.handle, spec.killTimeoutMs ?? DEFAULT_KILL_TIMEOUT_MS)
    const { handle: _, ...rest } = rec
    return { ...rest, state: 'pending', startAt: Date.now(), reason: 'restarted: a template changed' }
  }

  /** what a task is started with: its launch and, resolved now, its group's links and what it talks to */
  private startLaunch(
    a: LocalAlloc,
    spec: TaskSpec,
    state: Pick<AllocStateValue, 'id' | 'job' | 'group'>,
  ): TaskLaunch {
    const base = this.launch(a, spec, state)
    return { ...base, env: { ...base.env, ...this.linkEnv(a), ...this.talksTo(a, state) } }
  }

  /** the group's links, `TARGET[:ALIAS]` as `plexctl link` takes them (checked when the job was submitted) */
  private linkSpecs(a: LocalAlloc): LinkSpec[] {
    return (a.spec.links ?? []).map(parseLinkSpec)
  }

  /** Docker's variables of each link whose target resolves now (a snapshot, as Docker's are) */
  private linkEnv(a: LocalAlloc): Record<string, string> {
    const links = this.d.links
    if (!links) return {}
    return Object.assign({}, ...this.linkSpecs(a).map((l) => links.env(a.id, l) ?? {}))
  }

  /**
   * The allocation's hosts file when its group has links (its path, else undefined): written once,
   * then each link registered with the ports module's link service, as `plexctl link --hosts-file`
   * registers a container's, so its block keeps pointing at where each target is now. The file lies
   * in the allocation's directory, named by its container id (what links.ts hostsFileProblem allows).
   */
  private async linkHosts(a: LocalAlloc): Promise<string | undefined> {
    const links = this.d.links
    const specs = this.linkSpecs(a)
    if (!links || !specs.length) return undefined
    const path = join(allocDir(this.d.config.stateDir, a.id), 'hosts')
    if (!existsSync(path))
      await writeFileAtomic(
        path,
        `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${a.cni?.address ? `${a.cni.address}\t${a.id}\n` : ''}`,
        0o644,
      )
    for (const l of specs) await links.add({ container: a.id, ...l, hostsFile: path })
    return path
  }

  /**
   * Runs a command in a running task of this host's allocation (`plexctl exec`),
   * with the environment the task is started with. The caller named a task the
   * allocation has (see `local`).
   */
  async exec(allocId: string, task: string, command: string[], limits: ExecLimits): Promise<ExecResult> {
    const a = this.allocs.get(allocId)
    const spec = a?.spec.tasks.find((s) => s.name === task)
    const rec = a?.tasks.find((t) => t.name === task)
    if (!a || !spec || rec?.state !== 'running' || !rec.handle || a.final)
      throw new PlexusError(
        'PLX_RUNNER_TASK_NOT_RUNNING',
        `task ${task} of ${allocId} is not running (${a?.final?.status ?? rec?.state ?? 'unknown'})`,
        { status: 409 },
      )
    return this.drivers.get(spec.driver).exec(this.startLaunch(a, spec, a), rec.handle, command, limits)
  }

  /** Stops every task (grace, then SIGKILL), removes its cgroups, CNI DEL, deletes the namespace. Idempotent. */
  private async release(a: LocalAlloc): Promise<void> {
    if (a.released) return
    const state = { id: a.id, job: a.job, group: a.group } as AllocStateValue
    for (const t of a.tasks) {
      const spec = a.spec.tasks.find((s) => s.name === t.name)
      if (!spec) continue
      const launch = this.launch(a, spec, state)
      const drv = this.drivers.get(spec.driver)
      if (t.handle) await drv.stop(launch, t.handle, spec.killTimeoutMs ?? DEFAULT_KILL_TIMEOUT_MS)
      await drv.destroy(launch)
    }
    const path = netnsPath(a.netns)
    await this.detach(a.id, existsSync(path) ? path : '', this.attached(a))
    await deleteNetns(a.netns)
    if (a.spec.links?.length) await this.d.links?.remove(a.id)
    a.released = true
    await saveAlloc(this.d.config.stateDir, a)
  }

  /** allocstate/<self>/<id> with the allocation's life, written only when it changed and only while the record exists. */
  private async report(a: LocalAlloc, state: AllocStateValue): Promise<void> {
    const summary = a.final
      ? {
          ...allocSummary(a.tasks, true),
          status: a.final.status,
          ...(a.final.reason ? { reason: a.final.reason } : {}),
        }
      : allocSummary(a.tasks, a.cni !== undefined, a.setupError)
    const tasks: Record<string, AllocTaskState> = {}
    for (const t of a.tasks)
      tasks[t.name] = {
        state: t.state,
        restarts: t.restarts,
        ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
        ...(t.reason ? { reason: t.reason.slice(0, MAX_REASON) } : {}),
      }
    const {
      status: _s,
      reason: _r,
      restarts: _n,
      exitCode: _e,
      address: _a,
      tasks: _t,
      updatedAt: _u,
      ...identity
    } = state
    const next = {
      ...identity,
      status: summary.status,
      ...(summary.reason ? { reason: summary.reason.slice(0, MAX_REASON) } : {}),
      restarts: summary.restarts,
      ...(summary.exitCode !== undefined ? { exitCode: summary.exitCode } : {}),
      ...(a.cni?.address ? { address: a.cni.address } : {}),
      tasks,
    }
    const { updatedAt: _u2, ...current } = state
    if (JSON.stringify(sorted(current)) === JSON.stringify(sorted(next))) return
    const key = `${ALLOC_STATE_PREFIX}${this.d.peerId}/${a.id}`
    // compare-and-set: a record the scheduler released meanwhile is not written back to life
    const index = this.d.store.modifyIndex(key)
    if (!this.d.store.get(key)) return
    await this.d.store
      .put(key, allocStateCodec.encode({ ...next, updatedAt: Date.now() }), { cas: index })
      .catch((err) => this.d.logger.debug({ err, alloc: a.id }, 'allocstate changed meanwhile'))
  }

  /**
   * The allocation's resolv.conf from its CNI result, written at each start (an adopted allocation
   * may predate it); its path, or undefined when the result names no DNS server. Only a start needs
   * it: the other uses of a launch (inspect, stop, exec) never mount it.
   */
  private async writeResolvConf(a: LocalAlloc): Promise<string | undefined> {
    const text = resolvConfText(a.cni?.result)
    if (!text) return undefined
    const path = join(allocDir(this.d.config.stateDir, a.id), 'resolv.conf')
    await writeFileAtomic(path, text, 0o644)
    return path
  }

  /** PLEXUS_TALKSTO_*: what the group talks to, resolved when the task starts */
  private talksTo(a: LocalAlloc, state: Pick<AllocStateValue, 'job'>): Record<string, string> {
    const { store, peerId } = this.d
    const talksTo = a.spec.talksTo ?? []
    const rec = talksTo.length ? store.get(`${JOB_PREFIX}${state.job}`) : undefined
    const job = rec && jobOf(rec)
    if (!job) return {}
    return talksToEnv({
      talksTo,
      job: job.spec,
      catalog: buildCatalog(catalogInput(store)),
      allocs: store.list(ALLOC_STATE_PREFIX).flatMap((r) => allocStateCodec.valueOf(r) ?? []),
      self: peerId,
      origin: ZONE_ORIGIN,
    })
  }

  private launch(
    a: LocalAlloc,
    spec: TaskSpec,
    state: Pick<AllocStateValue, 'id' | 'job' | 'group'>,
  ): TaskLaunch {
    const logs = this.d.config.runner?.logs
    const dir = taskDir(this.d.config.stateDir, a.id, spec.name)
    // the rendered templates: where the task finds them (its own root sees the directory at /local)
    const local = TemplateFiles.dir(dir)
    const ownRoot = Boolean(spec.config.rootfs || spec.config.image)
    return {
      allocId: a.id,
      task: spec.name,
      command: spec.config.command ?? [],
      env: {
        PATH: DEFAULT_PATH,
        HOME: '/',
        ...spec.config.env,
        PLEXUS_ALLOC_ID: a.id,
        PLEXUS_JOB: state.job,
        PLEXUS_GROUP: state.group,
        PLEXUS_TASK: spec.name,
        PLEXUS_HOST: this.d.config.name,
        ...(a.cni?.address ? { PLEXUS_ADDRESS: a.cni.address } : {}),
        // a task on the cluster network (any of its interfaces): its host's application API, which
        // listens on that network's gateway, out of a named network's reach
        ...(a.cni?.address && interfacesOf(a.spec).some((i) => !i.network)
          ? appApiEnv(this.d.store, this.d.peerId, this.d.config.api.appPort)
          : {}),
        ...(spec.templates?.length ? { PLEXUS_TASK_DIR: ownRoot ? TASK_LOCAL_MOUNT : local } : {}),
      },
      ...(spec.templates?.length && ownRoot ? { local } : {}),
      ...(spec.config.user ? { user: spec.config.user } : {}),
      ...(spec.config.rootfs ? { rootfs: spec.config.rootfs } : {}),
      ...(spec.config.image ? { image: spec.config.image } : {}),
      resources: {
        cpu: spec.resources.cpu,
        memoryMb: spec.resources.memoryMb,
        pids: spec.resources.pids ?? DEFAULT_PIDS,
      },
      netns: netnsPath(a.netns),
      dir,
      logs: { maxBytes: logs?.maxBytes ?? 1_048_576, files: logs?.files ?? 3 },
    }
  }

  private cniConfig(): CniConfig {
    return { path: this.d.config.runner?.cniPath ?? ['/opt/cni/bin'], socket: this.d.config.api.socket }
  }

  /**
   * CNI ADD of each interface, eth0 first (network.ts attachCalls). One that fails takes back the ones
   * made before it, so an allocation left pending holds no interface or address until all attach.
   */
  private async attach(a: LocalAlloc, netns: string): Promise<NonNullable<LocalAlloc['cni']>> {
    const done: Attached[] = []
    try {
      for (const call of attachCalls(a.id, a.spec)) {
        const result = await cni(this.cniConfig(), { command: 'ADD', containerId: a.id, netns, ...call })
        done.push({ iface: call.iface, result: result ?? null })
      }
    } catch (err) {
      // DEL is idempotent: one that fails here is repeated by the next pass's rollback or release
      await this.detach(a.id, netns, done).catch((e: unknown) =>
        this.d.logger.warn({ alloc: a.id, err: e }, 'rolling back a partial attach failed'),
      )
      throw err
    }
    const [first, ...further] = done
    const address = resultAddress(first?.result)
    return {
      result: first?.result ?? null,
      ...(address ? { address } : {}),
      ...(further.length ? { further } : {}),
    }
  }

  /**
   * What release takes back: every interface ADD made. An allocation that never attached has none,
   * unless an attach failed (setupError), whose rollback may itself have failed: each of its
   * interfaces then gets a DEL without prevResult (a DEL of nothing succeeds).
   */
  private attached(a: LocalAlloc): Attached[] {
    const ifaces = interfacesOf(a.spec)
    if (!a.cni) return a.setupError ? ifaces.map((iface) => ({ iface, result: undefined })) : []
    // a spec has one interface at least (`networks` is never empty)
    return [{ iface: ifaces[0] ?? { ifname: 'eth0' }, result: a.cni.result }, ...(a.cni.further ?? [])]
  }

  /** CNI DEL of each interface, the last made first, each with its ADD's result as prevResult. */
  private async detach(id: string, netns: string, attached: Attached[]): Promise<void> {
    for (const { iface, result } of [...attached].reverse())
      await cni(this.cniConfig(), {
        command: 'DEL',
        containerId: id,
        netns,
        iface,
        args: nameArgs(id),
        prevResult: result,
      })
  }
}

/** JSON with keys in order, for comparing two records */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted)
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => [k, sorted(x)]),
    )
  return v
}
