import { type Static, Type } from '@sinclair/typebox'
import { Nullable, StringEnum } from '../../lib/schema.js'

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

/** PUT /v1/jobs and POST /v1/jobs/plan: the spec as text (YAML or JSON, every problem with its line) or as a value */
export const JobSubmitBody = Type.Object(
  {
    /** the spec as text: YAML or JSON */
    text: Type.Optional(Type.String({ maxLength: 1_000_000 })),
    /** the spec as a value */
    spec: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
)
export type JobSubmitBody = Static<typeof JobSubmitBody>

/** PUT /v1/jobs: the job and its version (a changed spec is a new version) */
export const JobSubmitReply = Type.Object({ name: Type.String(), version: Type.Integer() })
export type JobSubmitReply = Static<typeof JobSubmitReply>

/** each term in [0, 1] (affinity in [-1, 1]), higher is better; total is their weighted mean */
const Scores = Type.Object({
  network: Type.Optional(Type.Number()),
  /** Σ weight × RTT to the partners placed so far, before normalisation */
  networkCostMs: Type.Optional(Type.Number()),
  balance: Type.Number(),
  affinity: Type.Optional(Type.Number()),
  spread: Type.Optional(Type.Number()),
  total: Type.Number(),
})

/** one host's verdict for a group: the filter that removed it and why, or its scores */
export const HostVerdict = Type.Object({
  host: Type.String(),
  name: Type.String(),
  filter: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  scores: Type.Optional(Scores),
})

/** the placement and why (src/scheduler/placement/types.ts Plan) */
export const PlanExplanation = Type.Object({
  job: Type.String(),
  placements: Type.Array(
    Type.Object({
      group: Type.String(),
      index: Type.Integer(),
      host: Type.String(),
      hostName: Type.String(),
    }),
  ),
  failures: Type.Array(Type.Object({ group: Type.String(), index: Type.Integer(), reason: Type.String() })),
  groups: Type.Array(
    Type.Object({
      group: Type.String(),
      /** the order groups were placed in (callees before callers) */
      order: Type.Integer(),
      wanted: Type.Integer(),
      placed: Type.Integer(),
      /** verdict of every host for the group's first slot */
      hosts: Type.Array(HostVerdict),
      /** feasible hosts / hosts removed, per filter */
      filtered: Type.Record(Type.String(), Type.Integer()),
    }),
  ),
  /** Σ over talking slot pairs of pair weight × estimated RTT (ms) */
  networkCost: Type.Number(),
  /** network cost after the greedy pass, before local search */
  greedyCost: Type.Number(),
  /** moves and swaps local search applied */
  improvements: Type.Integer(),
})

/** POST /v1/jobs/plan: where the spec would be placed (nothing is written) */
export const JobPlanReply = Type.Object({
  job: Type.String(),
  /** the host that would own the job (peer id) */
  owner: Type.String(),
  place: Type.Array(
    Type.Object({ group: Type.String(), slot: Type.String(), host: Type.String(), hostName: Type.String() }),
  ),
  /** slots ("group/slot") the owner would remove */
  remove: Type.Array(Type.String()),
  /** set when slots had to be placed */
  explanation: Type.Optional(PlanExplanation),
})
export type JobPlanReply = Static<typeof JobPlanReply>

/**
 * GET /v1/jobs/<name>/explain and POST /v1/jobs/<name>/rebalance: the network cost where the job
 * runs now and after the moves that lower it, every host's verdict for each group (a fresh plan)
 */
export const JobRebalanceReply = Type.Object({
  job: Type.String(),
  /** the allocations holding the job's slots now */
  running: Type.Array(
    Type.Object({ id: Type.String(), group: Type.String(), slot: Type.String(), hostName: Type.String() }),
  ),
  costNow: Type.Number(),
  costAfter: Type.Number(),
  /** what a rebalance moves (none when it would save less than 5 %) */
  moves: Type.Array(
    Type.Object({
      id: Type.String(),
      group: Type.String(),
      slot: Type.String(),
      from: Type.String(),
      to: Type.String(),
      toPeer: Type.String(),
    }),
  ),
  /** rebalance: the moves were handed to the job's owner */
  applied: Type.Boolean(),
  explanation: PlanExplanation,
})
export type JobRebalanceReply = Static<typeof JobRebalanceReply>

/** POST /v1/jobs/<name>/rebalance */
export const JobRebalanceBody = Type.Object({ dryRun: Type.Optional(Type.Boolean()) })

/** one allocation of a job with its host's verdict */
export const JobAllocation = Type.Object({
  id: Type.String(),
  group: Type.String(),
  slot: Type.String(),
  host: Type.String(),
  hostName: Type.String(),
  jobVersion: Type.Integer(),
  /** the host's status, `placed` before it said, `lost` when the host is not alive */
  status: Type.String(),
  reason: Type.Optional(Type.String()),
  restarts: Type.Optional(Type.Integer()),
  address: Type.Optional(Type.String()),
  /** the hosts whose records place it (more than one only across a partition) */
  owners: Type.Array(Type.String()),
})

/** GET /v1/jobs/<name>: the job record, its owner and every allocation */
export const JobDetail = Type.Object({
  job: Type.Object({
    /** the spec as submitted (docs/jobs.md) */
    spec: Type.Unknown(),
    version: Type.Integer(),
    submittedAt: Type.String(),
    stopped: Type.Boolean(),
  }),
  owner: Nullable(Type.Object({ peer: Type.String(), name: Type.Optional(Type.String()) })),
  allocations: Type.Array(JobAllocation),
})
export type JobDetail = Static<typeof JobDetail>

/** GET /v1/jobs/<name>/history: the versions the job record keeps, newest first */
export const JobHistoryReply = Type.Array(
  Type.Object({
    version: Type.Integer(),
    submittedAt: Type.String(),
    /** the version the job runs now */
    current: Type.Boolean(),
    /** the spec of that version (docs/jobs.md) */
    spec: Type.Unknown(),
  }),
)
export type JobHistoryReply = Static<typeof JobHistoryReply>

/** DELETE /v1/jobs/<name>[?purge] */
export const JobStopQuery = Type.Object({ purge: Type.Optional(Type.String()) })
export const JobStopReply = Type.Object({
  name: Type.String(),
  stopped: Type.Boolean(),
  purged: Type.Boolean(),
})
export type JobStopReply = Static<typeof JobStopReply>

/** GET /v1/allocs[?job=] */
export const AllocsQuery = Type.Object(
  { job: Type.Optional(Type.String({ maxLength: 128 })) },
  { additionalProperties: false },
)

/** `:id` of an allocation */
export const AllocIdParam = Type.Object({ id: Type.String({ pattern: '^[a-z0-9-]{1,200}$' }) })

/** a task of an allocation, by its name in the job spec */
const TaskName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' })

/** GET /v1/allocs/<id>/logs: a task's output on this host, as text/plain (streamed with ?follow) */
export const AllocLogsQuery = Type.Object(
  {
    task: Type.Optional(TaskName),
    tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    follow: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

/** POST /v1/allocs/<id>/exec: a command run in a running task on this host (output captured, not interactive) */
export const AllocExecBody = Type.Object(
  {
    /** the task; a group of one task needs none */
    task: Type.Optional(TaskName),
    /** argv: the first element is looked up on the task's PATH (inside its rootfs) */
    command: Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 256 }),
    /** default 60: then the command's process group is killed */
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
  },
  { additionalProperties: false },
)
export type AllocExecBody = Static<typeof AllocExecBody>

/** the command's end and output (each stream its first MiB) */
export const AllocExecReply = Type.Object({
  /** 128+N when signal N ended it */
  exitCode: Type.Integer(),
  signal: Type.Optional(Type.String()),
  stdout: Type.String(),
  stderr: Type.String(),
  /** a stream wrote more than was kept */
  truncated: Type.Boolean(),
  /** the timeout passed and the command was killed */
  timedOut: Type.Boolean(),
})
export type AllocExecReply = Static<typeof AllocExecReply>
