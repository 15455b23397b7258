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

import { Ajv } from 'ajv'
import { lazy, lazyValidator } from '../lib/lazy.js'
import { canonicalJson, MAX_VALUE_BYTES } from '../store/record.js'
import type { AllocStatus, AllocValue } from '../store/records.js'
import {
  ALLOC_PREFIX,
  ALLOC_STATE_PREFIX,
  CAPACITY_PREFIX,
  type JsonValue,
  type StoreRecord,
} from '../store/types.js'
import { type JobSpec, jobProblems } from './spec.js'

export const JOB_PREFIX = 'jobs/'
/** config/drain/<name>: present while host <name> is drained (`plexctl hosts drain`): no new placements, its allocations move */
export const DRAIN_PREFIX = 'config/drain/'
export const drainKey = (name: string): string => `${DRAIN_PREFIX}${name}`

/** jobs/<name> */
export interface JobValue {
  spec: JobSpec
  /** 1 on first submission, +1 on every change of the spec */
  version: number
  submittedAt: string
  /** `plexctl job stop`: the owner removes its allocations, runners stop the tasks */
  stopped: boolean
  /** the versions before this one, oldest first (`plexctl job history`): at most HISTORY_KEEP, fewer when the record would outgrow the store's value limit */
  history?: JobVersion[]
}

/** a version a job had before its current one */
export interface JobVersion {
  version: number
  spec: JobSpec
  submittedAt: string
}

export const HISTORY_KEEP = 10

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
  ].slice(-HISTORY_KEEP)
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

// the job envelope's validator compiles on first use, not at import (src/lib/lazy.ts)
const ajv = lazy(() => new Ajv({ allErrors: false }))
const validJobEnvelope = lazyValidator(() =>
  ajv().compile({
    type: 'object',
    required: ['spec', 'version', 'submittedAt', 'stopped'],
    properties: {
      version: { type: 'integer', minimum: 1 },
      submittedAt: { type: 'string', maxLength: 64 },
      stopped: { type: 'boolean' },
      // what `job history` shows; an old spec is checked again only if it is ever run again
      history: {
        type: 'array',
        maxItems: HISTORY_KEEP,
        items: {
          type: 'object',
          required: ['version', 'spec', 'submittedAt'],
          properties: {
            version: { type: 'integer', minimum: 1 },
            spec: { type: 'object' },
            submittedAt: { type: 'string', maxLength: 64 },
          },
        },
      },
    },
  }),
)

/** A job record whose spec is valid and named as its key. */
export function jobOf(rec: StoreRecord): JobValue | undefined {
  if (!validJobEnvelope(rec.value)) return undefined
  const j = rec.value as unknown as JobValue
  if (jobProblems(j.spec).length > 0) return undefined
  return rec.key === jobKey(j.spec.name) ? j : undefined
}
