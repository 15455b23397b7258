// autoRevert (Nomad's update block): a rolling update whose new version
// fails goes back to the version it was replacing. Pure: every host could
// compute it; only the job's owner acts on it, by submitting that version's
// spec again as the next version (the history keeps it), which the rolling
// update then brings back slot by slot, health-gated as any update.
import { canonicalJson } from '../store/record.js'
import type { JsonValue } from '../store/types.js'
import type { JobValue, JobVersion } from './records.js'
import type { Claim, SlotVerdict } from './settle.js'
import { jobProblems } from './spec.js'

/** Nomad's healthy_deadline: how long a replacement may take to become healthy */
export const DEFAULT_HEALTHY_DEADLINE_MS = 300_000

/**
 * The version to go back to, and why, when a slot of a group with
 * `update.autoRevert` is still held by an older version and the current
 * version's replacement for it failed for good (its runner reported
 * `failed`) or has not become healthy within `update.healthyDeadlineMs`.
 * Undefined when nothing failed, the old version is not in the history, or
 * its spec is the failing one (a revert that failed too: no loop).
 */
export function revertTarget(
  job: JobValue,
  claims: readonly Claim[],
  verdicts: ReadonlyMap<string, SlotVerdict>,
  now: number,
): { to: JobVersion; reason: string } | undefined {
  if (job.stopped) return undefined
  for (const v of verdicts.values()) {
    const g = job.spec.groups.find((x) => x.name === v.group)
    const old = v.winner.alloc
    if (!g?.update?.autoRevert || old.jobVersion >= job.version) continue
    const failed = claims.find(
      (c) =>
        c.alloc.replaces === old.id && c.alloc.jobVersion === job.version && c.state?.status === 'failed',
    )
    const deadline = g.update.healthyDeadlineMs ?? DEFAULT_HEALTHY_DEADLINE_MS
    const late =
      v.incoming?.alloc.jobVersion === job.version && now - v.incoming.alloc.createdAt > deadline
        ? v.incoming
        : undefined
    if (!failed && !late) continue
    const to = job.history?.find((h) => h.version === old.jobVersion)
    // the history's specs came by gossip unchecked (records.ts jobOf): checked before one runs again
    if (!to || to.spec.name !== job.spec.name || jobProblems(to.spec).length > 0) continue
    // the failing version is already that spec (a revert that failed too): going back again would
    // loop once per deadline, so the job stays as it is and its failures speak for it
    if (canonicalJson(to.spec as unknown as JsonValue) === canonicalJson(job.spec as unknown as JsonValue))
      continue
    const reason = failed
      ? `allocation ${failed.alloc.id} failed: ${failed.state?.reason ?? 'no reason given'}`
      : `allocation ${late?.alloc.id} not healthy within ${deadline} ms`
    return { to, reason }
  }
  return undefined
}
