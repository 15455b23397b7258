import { type Static, Type } from '@sinclair/typebox'

/** GET /v1/explain?subject= : a route destination, gateway or MAC, a firewall rule tag, a veth, a DNS name or address */
export const ExplainQuery = Type.Object({
  subject: Type.String({ minLength: 1, maxLength: 253 }),
})
export type ExplainQuery = Static<typeof ExplainQuery>

/** one object a reconciler produced and the store records behind it */
export const Explanation = Type.Object({
  /** which reconciler made it */
  by: Type.Union([Type.Literal('datapath'), Type.Literal('dns')]),
  /** route, neigh, fdb, link, address, rule, switch, veth, peer; A, AAAA, PTR, SRV */
  kind: Type.String(),
  object: Type.String(),
  /** key and modify index in this host's store (0: gone since the datapath's last pass) */
  records: Type.Array(Type.Object({ key: Type.String(), index: Type.Integer() })),
})
export type Explanation = Static<typeof Explanation>

export const ExplainReply = Type.Object({
  subject: Type.String(),
  explanations: Type.Array(Explanation),
})
export type ExplainReply = Static<typeof ExplainReply>
