import { type Static, Type } from '@sinclair/typebox'
import { Nullable, StringEnum } from './common.js'

/** an allocation's lifecycle (scheduler/records.ts AllocStatus) */
const AllocStatus = StringEnum([
  'admitted',
  'rejected',
  'pending',
  'starting',
  'running',
  'complete',
  'failed',
  'lost',
])

/** GET /v1/jobs: one line per job */
export const JobLine = Type.Object({
  name: Type.String(),
  type: StringEnum(['service', 'batch', 'system']),
  version: Type.Integer(),
  stopped: Type.Boolean(),
  /** the host that owns the job's allocations now */
  owner: Nullable(Type.String()),
  wanted: Type.Integer(),
  placed: Type.Integer(),
  /** allocations their hosts admitted and still hold */
  admitted: Type.Integer(),
})
export type JobLine = Static<typeof JobLine>
export const JobsReply = Type.Array(JobLine)

/** one task of an allocation, as its host's runner reports it */
export const AllocTask = Type.Object({
  state: StringEnum(['pending', 'running', 'complete', 'failed', 'lost']),
  restarts: Type.Integer(),
  exitCode: Type.Optional(Type.Integer()),
  reason: Type.Optional(Type.String()),
})

/** GET /v1/allocs: an allocation as the host it was placed on reports it */
export const AllocLine = Type.Object({
  id: Type.String(),
  job: Type.String(),
  group: Type.String(),
  slot: Type.String(),
  jobVersion: Type.Integer(),
  /** the allocation this one replaces in a rolling update or a drain */
  replaces: Type.Optional(Type.String()),
  /** how many times this slot was placed again after failures, since when (ms epoch) */
  reschedule: Type.Optional(Type.Object({ attempt: Type.Integer(), since: Type.Integer() })),
  host: Type.String(),
  hostName: Type.String(),
  status: AllocStatus,
  restarts: Type.Integer(),
  exitCode: Type.Optional(Type.Integer()),
  address: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  tasks: Type.Record(Type.String(), AllocTask),
  /** ms epoch of the host's last report */
  updatedAt: Type.Integer(),
})
export type AllocLine = Static<typeof AllocLine>
export const AllocsReply = Type.Array(AllocLine)
