import { type Static, Type } from '@sinclair/typebox'
import { LABEL_KEY, Nullable, StringEnum } from '../../lib/schema.js'

/** a cluster member as this host sees it */
export const Host = Type.Object({
  name: Type.String(),
  peerId: Type.String(),
  address: Type.String(),
  state: StringEnum(['alive', 'suspect', 'dead']),
  self: Type.Boolean(),
  lastHeard: Type.String(),
  silentMs: Type.Integer(),
  labels: Type.Record(Type.String(), Type.String()),
  /** estimated from Vivaldi coordinates */
  rttMs: Nullable(Type.Number()),
  /** the last round trip measured to this peer (what feeds the coordinates): the kernel's TCP RTT, else a ping */
  measuredRttMs: Type.Optional(Nullable(Type.Number())),
  measuredBy: Type.Optional(StringEnum(['kernel', 'ping'])),
  version: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String()),
  multiaddrs: Type.Optional(Type.Array(Type.String())),
  /** config/drain/<name> exists: no new placements, its allocations move away */
  drained: Type.Optional(Type.Boolean()),
  /** its Vivaldi coordinate (Serf's variant: RTT estimate = |a.vec - b.vec| + heights, in seconds) */
  coordinate: Type.Optional(
    Type.Object({
      vec: Type.Array(Type.Number()),
      height: Type.Number(),
      error: Type.Number(),
      adjustment: Type.Number(),
    }),
  ),
})
export type Host = Static<typeof Host>

/** GET /v1/hosts */
export const HostsReply = Type.Object({ hosts: Type.Array(Host) })
export type HostsReply = Static<typeof HostsReply>

export const HostParams = Type.Object({ name: Type.String({ minLength: 1 }) })

/** PUT /v1/hosts/:name/labels: {"labels": {"k": "v", "gone": null}} (null removes) */
export const LabelsBody = Type.Object(
  {
    // a key outside the pattern is refused, not ignored
    labels: Type.Record(Type.String({ pattern: LABEL_KEY }), Nullable(Type.String({ maxLength: 256 })), {
      additionalProperties: false,
    }),
  },
  { additionalProperties: false },
)
export type LabelsBody = Static<typeof LabelsBody>

/** PUT and DELETE /v1/hosts/:name/drain */
export const DrainReply = Type.Object({ name: Type.String(), drained: Type.Boolean() })
export type DrainReply = Static<typeof DrainReply>

export const LabelsReply = Type.Object({
  name: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
})
export type LabelsReply = Static<typeof LabelsReply>
