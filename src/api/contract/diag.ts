import { type Static, Type } from '@sinclair/typebox'
import { StringEnum } from './common.js'

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
