// The runner's decisions, pure: what a task's end means under its group's
// restart policy, when it starts again, and what an allocation's status is
// given its tasks. No clock, no processes, no store: service.ts observes and
// acts, this file decides, and the unit tests drive it with plain records.
import type { AllocStatus } from '../scheduler/records.js'
import type { GroupSpec } from '../scheduler/spec.js'
import type { TaskHandle } from './driver.js'

export type RestartPolicy = NonNullable<GroupSpec['restart']>

/** Docker's and Nomad's defaults in spirit: a failing task is retried a few times, then reported failed. */
export const DEFAULT_RESTART: Required<RestartPolicy> = {
  policy: 'on-failure',
  attempts: 3,
  delayMs: 1000,
  maxDelayMs: 30_000,
}

/** A run at least this long resets the backoff (Docker: 10 s), so a task that crashes once a day restarts at once. */
export const STABLE_RUN_MS = 10_000

export type TaskState = 'pending' | 'running' | 'complete' | 'failed' | 'lost'

/** One task of an allocation as the runner keeps it (persisted: a restarted agent goes on from it). */
export interface TaskRecord {
  name: string
  state: TaskState
  /** the running process, while state is running */
  handle?: TaskHandle
  /** restarts so far */
  restarts: number
  /** consecutive runs shorter than STABLE_RUN_MS: the backoff's exponent */
  streak: number
  /** the last run's exit status (128+N when signal N killed it) */
  exitCode?: number
  /** why the last run ended badly (or why it could not start) */
  reason?: string
  /** pending: not before this time (ms epoch) */
  startAt?: number
}

/** How a run ended: it exited, it vanished with no exit status recorded, or the driver could not start it. */
export type Outcome =
  | { kind: 'exited'; exitCode: number; signal?: string; reason?: string }
  | { kind: 'gone' }
  | { kind: 'start-failed'; reason: string }

export const newTask = (name: string, now: number): TaskRecord => ({
  name,
  state: 'pending',
  restarts: 0,
  streak: 0,
  startAt: now,
})

export function resolvePolicy(p: RestartPolicy | undefined): Required<RestartPolicy> {
  const policy = p?.policy ?? DEFAULT_RESTART.policy
  return {
    policy,
    // `always` restarts without end unless attempts bounds it
    attempts: p?.attempts ?? (policy === 'always' ? Number.POSITIVE_INFINITY : DEFAULT_RESTART.attempts),
    delayMs: p?.delayMs ?? DEFAULT_RESTART.delayMs,
    maxDelayMs: p?.maxDelayMs ?? Math.max(DEFAULT_RESTART.maxDelayMs, p?.delayMs ?? 0),
  }
}

/** delay before restart number streak+1: doubling from delayMs, capped at maxDelayMs */
export const backoffMs = (p: Required<RestartPolicy>, streak: number): number =>
  Math.min(p.maxDelayMs, p.delayMs * 2 ** Math.min(streak, 30))

function describe(o: Outcome): string | undefined {
  if (o.kind === 'gone')
    return 'the process vanished and no exit status was recorded (host reboot or supervisor killed)'
  if (o.kind === 'start-failed') return o.reason
  if (o.reason) return o.reason
  if (o.signal) return `killed by ${o.signal}`
  return o.exitCode === 0 ? undefined : `exit code ${o.exitCode}`
}

/** What a task's end means (pure): restart after a delay, or its final state. */
export function afterEnd(
  t: TaskRecord,
  o: Outcome,
  policy: Required<RestartPolicy>,
  now: number,
): TaskRecord {
  const success = o.kind === 'exited' && o.exitCode === 0
  const reason = describe(o)
  const ran = t.handle ? now - t.handle.startedAt : 0
  const streak = ran >= STABLE_RUN_MS ? 0 : t.streak
  const base: TaskRecord = {
    name: t.name,
    state: t.state,
    restarts: t.restarts,
    streak,
    ...(o.kind === 'exited' ? { exitCode: o.exitCode } : {}),
    ...(reason ? { reason } : {}),
  }
  const wants = policy.policy === 'always' || (policy.policy === 'on-failure' && !success)
  if (wants && t.restarts < policy.attempts)
    return {
      ...base,
      state: 'pending',
      restarts: t.restarts + 1,
      streak: streak + 1,
      startAt: now + backoffMs(policy, streak),
    }
  if (success) return { ...base, state: 'complete' }
  const tried = t.restarts > 0 ? ` (after ${t.restarts} restart${t.restarts === 1 ? '' : 's'})` : ''
  return { ...base, state: o.kind === 'gone' ? 'lost' : 'failed', reason: `${reason}${tried}` }
}

export type TaskAction = { kind: 'none' } | { kind: 'start' } | { kind: 'wait'; untilMs: number }

/** What to do for a task now, given what was observed of its process (pure). */
export function nextAction(t: TaskRecord, now: number): TaskAction {
  if (t.state !== 'pending') return { kind: 'none' }
  const at = t.startAt ?? now
  return at <= now ? { kind: 'start' } : { kind: 'wait', untilMs: at }
}

export interface AllocSummary {
  status: AllocStatus
  reason?: string
  restarts: number
  exitCode?: number
}

/**
 * An allocation's status from its tasks (pure). A group is one unit, like a
 * pod: one task failed for good fails the allocation (its other tasks are
 * stopped); it is running once every task runs, complete once every task
 * completed; `pending` until its network is attached.
 */
export function allocSummary(tasks: TaskRecord[], attached: boolean, setupError?: string): AllocSummary {
  const restarts = tasks.reduce((n, t) => n + t.restarts, 0)
  const last =
    tasks.find((t) => t.exitCode !== undefined && t.exitCode !== 0) ??
    tasks.find((t) => t.exitCode !== undefined)
  const exit = last?.exitCode !== undefined ? { exitCode: last.exitCode } : {}
  const bad = tasks.find((t) => t.state === 'failed') ?? tasks.find((t) => t.state === 'lost')
  if (bad)
    return {
      status: bad.state === 'failed' ? 'failed' : 'lost',
      reason: `task ${bad.name}: ${bad.reason}`,
      restarts,
      ...exit,
    }
  if (!attached) return { status: 'pending', restarts, ...(setupError ? { reason: setupError } : {}) }
  if (tasks.every((t) => t.state === 'complete')) return { status: 'complete', restarts, ...exit }
  if (tasks.every((t) => t.state === 'running' || t.state === 'complete'))
    return { status: 'running', restarts, ...exit }
  const waiting = tasks.find((t) => t.state === 'pending' && t.reason)
  return {
    status: 'starting',
    restarts,
    ...exit,
    ...(waiting ? { reason: `task ${waiting.name}: ${waiting.reason}` } : {}),
  }
}

export const isFinal = (s: AllocStatus): s is 'complete' | 'failed' | 'lost' =>
  s === 'complete' || s === 'failed' || s === 'lost'
