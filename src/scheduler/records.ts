// The scheduler's and the runner's records: key layout, value shapes and
// validators. One design for both (issues 12 and 13):
//
//   jobs/<name>                                   the job as submitted (any member writes it)
//   capacity/<peerId>                             what a host offers and what its admitted allocations use (owned)
//   allocs/<ownerPeerId>/<job>/<group>/<slot>     a slot placed on a host by the job's owner (owned by the owner)
//   allocstate/<hostPeerId>/<allocId>             the target host's verdict and the allocation's life (owned by the host)
//
// Every host reads the same records and applies the same pure rules
// (owner.ts, settle.ts, admission.ts), so no consensus is needed: the owner
// is the only writer of a job's allocations, the target host the only judge
// of its own capacity. Values arrive by gossip, so every reader decodes them
// (src/store/codecs.ts; jobs/ here, as its spec's rules are the scheduler's).

import { recordCodec } from '../store/codec.js'
import { drainCodec } from '../store/codecs.js'
import { canonicalJson, MAX_VALUE_BYTES } from '../store/record.js'
import type { AllocStatus, AllocValue } from '../store/records.js'
import { JOB_HISTORY_KEEP, JobRecord } from '../store/schemas.js'
import {
  ALLOC_PREFIX,
  ALLOC_STATE_PREFIX,
  CAPACITY_PREFIX,
  DRAIN_PREFIX,
  JOB_PREFIX,
  type JsonValue,
  type ReadableStore,
  type StoreRecord,
} from '../store/types.js'
import { type JobSpec, jobProblems } from './spec.js'

/** config/drain/<name>: present while host <name> is drained (`plexctl hosts drain`): no new placements, its allocations move */
export const drainKey = (name: string): string => `${DRAIN_PREFIX}${name}`

/** whether an operator has drained host `name` (a drain record that does not decode counts as none) */
export const isDrained = (store: Pick<ReadableStore, 'get'>, name: string): boolean => {
  const rec = store.get(drainKey(name))
  return rec !== undefined && drainCodec.valueOf(rec) !== undefined
}

/** jobs/<name> */
export interface JobValue {
  spec: JobSpec
  /** 1 on first submission, +1 on every change of the spec */
  version: number
  submittedAt: string
  /** `plexctl job stop`: the owner removes its allocations, runners stop the tasks */
  stopped: boolean
  /** the versions before this one, oldest first (`plexctl job history`): at most JOB_HISTORY_KEEP, fewer when the record would outgrow the store's value limit */
  history?: JobVersion[]
  /** `plexctl job rebalance`: allocations the owner replaces on another host (rebalance.ts); a new version drops it */
  rebalance?: { at: string; moves: { alloc: string; to: string }[] }
}

/** a version a job had before its current one */
export interface JobVersion {
  version: number
  spec: JobSpec
  submittedAt: string
}

const sameSpec = (a: JobSpec, b: JobSpec) => JSON.stringify(a) === JSON.stringify(b)

/**
 * The job record after a submission of `spec`: undefined when it is the
 * running job's spec already; else the same version when only restarting a
 * stopped job, or the next version with the current one moved into history.
 * History is kept in the job record itself (one compare-and-set covers the
 * version and its history), so it gives way, oldest first, to the store's
 * value limit.
 */
export function submitted(current: JobValue | undefined, spec: JobSpec, at: string): JobValue | undefined {
  if (current && sameSpec(current.spec, spec) && !current.stopped) return undefined
  if (current && sameSpec(current.spec, spec)) return { ...current, submittedAt: at, stopped: false }
  const value: JobValue = { spec, version: (current?.version ?? 0) + 1, submittedAt: at, stopped: false }
  if (!current) return value
  const history = [
    ...(current.history ?? []),
    { version: current.version, spec: current.spec, submittedAt: current.submittedAt },
  ].slice(-JOB_HISTORY_KEEP)
  while (
    history.length &&
    canonicalJson({ ...value, history } as unknown as JsonValue).length > MAX_VALUE_BYTES
  )
    history.shift()
  return history.length ? { ...value, history } : value
}

// the value shapes are the store's (src/store/records.ts; decoded by src/store/codecs.ts)
export type {
  AllocStateValue,
  AllocStatus,
  AllocTaskState,
  AllocValue,
  CapacityValue,
  Resources,
} from '../store/records.js'

/** states in which an allocation holds its slot and its host's capacity */
export const HOLDING: ReadonlySet<AllocStatus> = new Set(['admitted', 'pending', 'starting', 'running'])

/** states the runner reports once an allocation ended for good */
export const ENDED: ReadonlySet<AllocStatus> = new Set(['complete', 'failed', 'lost'])
/** how long an ended allocation's record (its status, exit code, reason) is kept after its slot moved on */
export const ENDED_KEEP_MS = 60_000

export const jobKey = (name: string): string => `${JOB_PREFIX}${name}`
export const capacityKey = (peer: string): string => `${CAPACITY_PREFIX}${peer}`
export const allocKey = (owner: string, a: Pick<AllocValue, 'job' | 'group' | 'slot'>): string =>
  `${ALLOC_PREFIX}${owner}/${a.job}/${a.group}/${a.slot}`
export const allocStateKey = (host: string, id: string): string => `${ALLOC_STATE_PREFIX}${host}/${id}`

/**
 * jobs/<name>: the envelope's shape is the store's (JobRecord, compiled on
 * first use); the spec's rules are the scheduler's, and it must name its key.
 * Writers encode through it too, so a job record that reaches gossip is one
 * every reader accepts.
 */
export const jobCodec = recordCodec<JobValue>(JOB_PREFIX, JobRecord, (key, j) => {
  const problem = jobProblems(j.spec)[0]
  if (problem) return `spec${problem.path ? `.${problem.path}` : ''}: ${problem.message}`
  return key === jobKey(j.spec.name) ? undefined : `the spec is named ${j.spec.name}, the key says ${key}`
})

/** A job record whose spec is valid and named as its key. */
export const jobOf = (rec: StoreRecord): JobValue | undefined => jobCodec.valueOf(rec)
