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
// of its own capacity. Values arrive by gossip, so every reader validates.

import { Ajv } from 'ajv'
import { lazy, lazyValidator } from '../lib/lazy.js'
import { ALLOC_PREFIX, ALLOC_STATE_PREFIX, CAPACITY_PREFIX, type StoreRecord } from '../store/types.js'
import type { RescheduleTracker } from './reschedule.js'
import { type JobSpec, jobProblems } from './spec.js'

export const JOB_PREFIX = 'jobs/'
/** config/drain/<name>: present while host <name> is drained (`plexctl hosts drain`): no new placements, its allocations move */
export const DRAIN_PREFIX = 'config/drain/'
export const drainKey = (name: string): string => `${DRAIN_PREFIX}${name}`

/** cpu in millicores, memory in MiB (the units of a task's resources) */
export interface Resources {
  cpu: number
  memoryMb: number
}

/** jobs/<name> */
export interface JobValue {
  spec: JobSpec
  /** 1 on first submission, +1 on every change of the spec */
  version: number
  submittedAt: string
  /** `plexctl job stop`: the owner removes its allocations, runners stop the tasks */
  stopped: boolean
}

/** capacity/<peerId> */
export interface CapacityValue {
  /** what the host offers (from the host, overridable in config) */
  total: Resources
  /** what the allocations it admitted use */
  used: Resources
  /** false while drained: no new placements */
  eligible: boolean
}

/** allocs/<ownerPeerId>/<job>/<group>/<slot> */
export interface AllocValue {
  /** stable across owner changes: a new owner adopts the slot with the same id */
  id: string
  job: string
  jobVersion: number
  group: string
  /** the slot within the group: its index, or the host's peer id for a system job */
  slot: string
  /** peer id of the host that runs it */
  host: string
  hostName: string
  resources: Resources
  /** ms epoch when the slot was first placed (settles duplicates: the older wins) */
  createdAt: number
  /** set on the replacement of a failed allocation: its place in the slot's run of failures */
  reschedule?: RescheduleTracker
  /** set on a replacement brought up beside a running allocation (update, drain): that allocation's id */
  replaces?: string
}

export type AllocStatus =
  | 'admitted'
  | 'rejected'
  | 'pending'
  | 'starting'
  | 'running'
  | 'complete'
  | 'failed'
  | 'lost'

/** allocstate/<hostPeerId>/<allocId>: carries the allocation's identity so a new owner can adopt it */
export interface AllocStateValue extends AllocValue {
  status: AllocStatus
  /** why it was rejected or why it last failed */
  reason?: string
  updatedAt: number
  /** the runner's: restarts of its tasks so far, the last exit status, its address, each task's state */
  restarts?: number
  exitCode?: number
  address?: string
  tasks?: Record<string, AllocTaskState>
}

/** One task of a running allocation, as the runner reports it. */
export interface AllocTaskState {
  state: 'pending' | 'running' | 'complete' | 'failed' | 'lost'
  restarts: number
  exitCode?: number
  reason?: string
}

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

// the validators compile on first use, not at import (src/lib/lazy.ts)
const ajv = lazy(() => new Ajv({ allErrors: false }))
const resources = {
  type: 'object',
  required: ['cpu', 'memoryMb'],
  properties: {
    cpu: { type: 'integer', minimum: 0, maximum: 1e9 },
    memoryMb: { type: 'integer', minimum: 0, maximum: 1e9 },
  },
} as const
const segment = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^/]+$' }
const allocProperties = {
  id: { type: 'string', pattern: '^[a-z0-9-]{1,200}$' },
  job: segment,
  jobVersion: { type: 'integer', minimum: 1 },
  group: segment,
  slot: segment,
  host: segment,
  hostName: { type: 'string', maxLength: 253 },
  resources,
  createdAt: { type: 'number', minimum: 0 },
  replaces: { type: 'string', pattern: '^[a-z0-9-]{1,200}$' },
  reschedule: {
    type: 'object',
    additionalProperties: false,
    required: ['attempt', 'since'],
    properties: {
      attempt: { type: 'integer', minimum: 1, maximum: 1e6 },
      since: { type: 'number', minimum: 0 },
    },
  },
} as const
const allocRequired = [
  'id',
  'job',
  'jobVersion',
  'group',
  'slot',
  'host',
  'hostName',
  'resources',
  'createdAt',
]

const validAlloc = lazyValidator(() =>
  ajv().compile({ type: 'object', required: allocRequired, properties: allocProperties }),
)
const validState = lazyValidator(() =>
  ajv().compile({
    type: 'object',
    required: [...allocRequired, 'status', 'updatedAt'],
    properties: {
      ...allocProperties,
      status: { enum: [...HOLDING, 'rejected', 'complete', 'failed', 'lost'] },
      reason: { type: 'string', maxLength: 1024 },
      updatedAt: { type: 'number', minimum: 0 },
      restarts: { type: 'integer', minimum: 0 },
      exitCode: { type: 'integer', minimum: 0, maximum: 255 },
      address: { type: 'string', maxLength: 64 },
      tasks: {
        type: 'object',
        maxProperties: 32,
        additionalProperties: {
          type: 'object',
          required: ['state', 'restarts'],
          properties: {
            state: { enum: ['pending', 'running', 'complete', 'failed', 'lost'] },
            restarts: { type: 'integer', minimum: 0 },
            exitCode: { type: 'integer', minimum: 0, maximum: 255 },
            reason: { type: 'string', maxLength: 1024 },
          },
        },
      },
    },
  }),
)
const validCapacity = lazyValidator(() =>
  ajv().compile({
    type: 'object',
    required: ['total', 'used', 'eligible'],
    properties: { total: resources, used: resources, eligible: { type: 'boolean' } },
  }),
)
const validJobEnvelope = lazyValidator(() =>
  ajv().compile({
    type: 'object',
    required: ['spec', 'version', 'submittedAt', 'stopped'],
    properties: {
      version: { type: 'integer', minimum: 1 },
      submittedAt: { type: 'string', maxLength: 64 },
      stopped: { type: 'boolean' },
    },
  }),
)

/** the key's segments after the prefix: [owner, job, group, slot] or [host, id] */
const segments = (key: string, prefix: string) => key.slice(prefix.length).split('/')

/** A valid alloc record whose key agrees with its value and whose writer owns the key. */
export function allocOf(rec: StoreRecord): AllocValue | undefined {
  const v = rec.value
  if (!validAlloc(v)) return undefined
  const a = v as unknown as AllocValue
  const [owner, job, group, slot] = segments(rec.key, ALLOC_PREFIX)
  const agrees = owner === rec.owner && job === a.job && group === a.group && slot === a.slot
  return agrees ? a : undefined
}

/** A valid allocstate record written by the host it names. */
export function allocStateOf(rec: StoreRecord): AllocStateValue | undefined {
  const v = rec.value
  if (!validState(v)) return undefined
  const s = v as unknown as AllocStateValue
  const [host, id] = segments(rec.key, ALLOC_STATE_PREFIX)
  return host === rec.owner && host === s.host && id === s.id ? s : undefined
}

export function capacityOf(rec: StoreRecord): CapacityValue | undefined {
  const [peer] = segments(rec.key, CAPACITY_PREFIX)
  return peer === rec.owner && validCapacity(rec.value) ? (rec.value as unknown as CapacityValue) : undefined
}

/** A job record whose spec is valid and named as its key. */
export function jobOf(rec: StoreRecord): JobValue | undefined {
  if (!validJobEnvelope(rec.value)) return undefined
  const j = rec.value as unknown as JobValue
  if (jobProblems(j.spec).length > 0) return undefined
  return rec.key === jobKey(j.spec.name) ? j : undefined
}
