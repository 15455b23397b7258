// When a failed allocation's slot is placed again (Nomad's reschedule block).
// The runner restarts tasks in place per the group's `restart` policy; once
// that is spent the allocation is `failed` (or `lost`) and its slot is empty.
// Placing it again at once, every time, is a silent retry loop that churns
// namespaces and addresses across the cluster, so the owner waits a delay
// that doubles with each failure of the slot and, unless the policy is
// unlimited, gives up after `attempts` within `intervalMs`. The count travels
// on the replacement's own record (`AllocValue.reschedule`), so it survives
// owner changes and the expiry of the failed allocation's state.
import type { RescheduleTracker } from '../store/records.js'
import type { JobType } from './spec.js'

export type { RescheduleTracker }

export interface ReschedulePolicy {
  /** reschedules allowed within `intervalMs` (ignored when unlimited) */
  attempts: number
  /** the window the attempts are counted in, from the first failure of a run of failures */
  intervalMs: number
  /** the first delay; it doubles with each reschedule in the window */
  delayMs: number
  maxDelayMs: number
  unlimited: boolean
}

/**
 * Nomad's defaults: a service is placed again without end, after 30 s
 * doubling to an hour; a batch job once a day, after 5 s. A system job's slot
 * is its host, so it follows the service rule there.
 */
export const DEFAULT_RESCHEDULE: Record<JobType, ReschedulePolicy> = {
  service: { attempts: 0, intervalMs: 3_600_000, delayMs: 30_000, maxDelayMs: 3_600_000, unlimited: true },
  system: { attempts: 0, intervalMs: 3_600_000, delayMs: 30_000, maxDelayMs: 3_600_000, unlimited: true },
  batch: { attempts: 1, intervalMs: 86_400_000, delayMs: 5_000, maxDelayMs: 5_000, unlimited: false },
}

export function resolveReschedule(
  given: Partial<ReschedulePolicy> | undefined,
  type: JobType,
): ReschedulePolicy {
  const d = DEFAULT_RESCHEDULE[type]
  const delayMs = given?.delayMs ?? d.delayMs
  return {
    // giving attempts says the count matters: it bounds the retries unless unlimited is said too
    unlimited: given?.unlimited ?? (given?.attempts === undefined ? d.unlimited : false),
    attempts: given?.attempts ?? d.attempts,
    intervalMs: given?.intervalMs ?? d.intervalMs,
    delayMs,
    maxDelayMs: given?.maxDelayMs ?? Math.max(d.maxDelayMs, delayMs),
  }
}

export type RescheduleDecision =
  | { kind: 'place'; tracker: RescheduleTracker }
  | { kind: 'wait'; until: number; tracker: RescheduleTracker }
  | { kind: 'exhausted'; reason: string }

/**
 * The slot of an allocation that failed at `failedAt`, itself a replacement
 * carrying `previous` (or the first of its slot): place now, wait, or give up.
 */
export function rescheduleDecision(
  policy: ReschedulePolicy,
  failedAt: number,
  previous: RescheduleTracker | undefined,
  now: number,
): RescheduleDecision {
  const inWindow = previous !== undefined && failedAt - previous.since < policy.intervalMs
  const tracker: RescheduleTracker = {
    attempt: (inWindow ? previous.attempt : 0) + 1,
    since: inWindow ? previous.since : failedAt,
  }
  if (!policy.unlimited && tracker.attempt > policy.attempts) {
    const window = Math.round(policy.intervalMs / 1000)
    return {
      kind: 'exhausted',
      reason: `failed after ${policy.attempts} reschedule(s) within ${window} s: not placed again until the job changes`,
    }
  }
  const delay = Math.min(policy.maxDelayMs, policy.delayMs * 2 ** Math.min(tracker.attempt - 1, 30))
  const until = failedAt + delay
  return until <= now ? { kind: 'place', tracker } : { kind: 'wait', until, tracker }
}
