import { type Static, Type } from '@sinclair/typebox'

/** GET /v1/status: this agent, its process and the operator's figures */
export const StatusReply = Type.Object({
  name: Type.String(),
  peerId: Type.String(),
  version: Type.String(),
  pid: Type.Integer(),
  startedAt: Type.String(),
  uptimeSeconds: Type.Number(),
  /** the agent process: resident set, V8 heap in use, memory outside the heap (buffers, addons) */
  memory: Type.Object({
    rssBytes: Type.Integer(),
    heapUsedBytes: Type.Integer(),
    externalBytes: Type.Integer(),
  }),
  /** the operator's figures: each plexus_ counter and gauge series (histograms: _count, _sum), as GET /metrics names it */
  metrics: Type.Record(Type.String(), Type.Number()),
})
export type StatusReply = Static<typeof StatusReply>
