import { type Static, Type } from '@sinclair/typebox'

/** one pair of services: the cluster's measured rate, summed over the hosts that counted it */
export const TrafficPairRow = Type.Object({
  from: Type.String(),
  to: Type.String(),
  bytesPerSec: Type.Number(),
  /** the hosts whose containers opened the connections (each counts its own) */
  hosts: Type.Array(Type.String()),
})

/** GET /v1/traffic: the measured service-to-service matrix the scheduler places by (src/traffic/README.md) */
export const TrafficReply = Type.Object({
  pairs: Type.Array(TrafficPairRow),
  /** each host's summary: when it was measured, and its time constant */
  hosts: Type.Array(
    Type.Object({ host: Type.String(), at: Type.String(), tauMs: Type.Integer(), pairs: Type.Integer() }),
  ),
})
export type TrafficReply = Static<typeof TrafficReply>
