import { type Static, Type } from '@sinclair/typebox'
import { StringEnum } from '../../lib/schema.js'

const Status = StringEnum(['ok', 'warn', 'fail'] as const)

/** one doctor check: what was looked at and, when not ok, what to do */
const Finding = Type.Object({
  check: Type.String(),
  status: Status,
  evidence: Type.String(),
  fix: Type.Optional(Type.String()),
})

/** GET /v1/doctor?host=H */
export const DoctorQuery = Type.Object({
  host: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
})
export type DoctorQuery = Static<typeof DoctorQuery>

/** GET /v1/doctor: one host's usual causes of trouble, worst status first in `status` */
export const DoctorReply = Type.Object({
  host: Type.String(),
  status: Status,
  findings: Type.Array(Finding),
})
export type DoctorReply = Static<typeof DoctorReply>

const Proto = StringEnum(['tcp', 'udp', 'icmp'] as const)

/** POST /v1/trace: a flow between two places (container name or id, host name, cluster address, or a DNS name such as a service) */
export const TraceRequest = Type.Object(
  {
    src: Type.String({ minLength: 1, maxLength: 253 }),
    dst: Type.String({ minLength: 1, maxLength: 253 }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /** default: tcp with a port, icmp without */
    proto: Type.Optional(Proto),
    /** also send one real packet (TCP SYN, UDP datagram, ICMP echo) from the source and report where it was seen */
    probe: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export type TraceRequest = Static<typeof TraceRequest>

/** one observation on the path */
const Hop = Type.Object({
  host: Type.String(),
  /** dns, container-route, veth, host-route, firewall, masquerade, vxlan-neighbour, vxlan-fdb, underlay, published-port, container, socket, host, agent */
  component: Type.String(),
  action: StringEnum(['forwarded', 'delivered', 'nat', 'dropped', 'no-answer'] as const),
  /** the kernel object that decided */
  object: Type.String(),
  /** the store record that made it */
  record: Type.Optional(Type.String()),
  cause: Type.Optional(Type.String()),
  fix: Type.Optional(Type.String()),
})

/** POST /v1/trace: hop by hop from each host's kernel, and one diagnosis line */
export const TraceReply = Type.Object({
  flow: Type.Object({
    src: Type.String(),
    dst: Type.String(),
    proto: Proto,
    port: Type.Optional(Type.Integer()),
    srcName: Type.String(),
    dstName: Type.String(),
    srcHost: Type.String(),
    dstHost: Type.String(),
  }),
  hops: Type.Array(Hop),
  diagnosis: Type.Object({
    ok: Type.Boolean(),
    /** index of the broken hop */
    hop: Type.Optional(Type.Integer()),
    line: Type.String(),
  }),
  /** with probe: the packet's answer, its round trip, and each host's conntrack entry of it */
  probe: Type.Optional(
    Type.Object({
      outcome: StringEnum(['answered', 'refused', 'no-answer', 'error'] as const),
      rttMs: Type.Optional(Type.Number()),
      sport: Type.Optional(Type.Integer()),
      detail: Type.String(),
      seen: Type.Array(Type.Object({ host: Type.String(), seen: Type.Boolean(), object: Type.String() })),
    }),
  ),
  durationMs: Type.Integer(),
})
export type TraceReply = Static<typeof TraceReply>
