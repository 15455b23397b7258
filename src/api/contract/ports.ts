// Published ports: this host's (publish, unpublish, list) and the cluster's.
// Values are checked by src/ports (one place for the reasons a mapping is
// refused); the schemas here only pin the types.
import { type Static, Type } from '@sinclair/typebox'
import { ErrorBody } from './common.js'

const Container = Type.String({ minLength: 1, maxLength: 256 })
const Protocol = Type.String({ minLength: 1, maxLength: 16 })
const HostIp = Type.String({ maxLength: 64 })

/** one published port, where it is and which container it reaches */
export const PortRow = Type.Object({
  host: Type.String(),
  hostAddress: Type.String(),
  hostPort: Type.Integer(),
  protocol: Type.String(),
  container: Type.String(),
  containerId: Type.String(),
  containerIp: Type.String(),
  containerPort: Type.Integer(),
  /** published on the host answering */
  local: Type.Boolean(),
})
export type PortRow = Static<typeof PortRow>
export const PortsReply = Type.Array(PortRow)

/** GET /v1/ports[?local=true] */
export const PortsQuery = Type.Object(
  { local: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)

/** POST /v1/ports: publish a port of a container of this host (protocol tcp by default) */
export const PublishBody = Type.Object(
  {
    container: Container,
    hostPort: Type.Integer(),
    containerPort: Type.Integer(),
    protocol: Type.Optional(Protocol),
    hostIp: Type.Optional(HostIp),
  },
  { additionalProperties: false },
)

/** DELETE /v1/ports/<container>/<hostPort>[?protocol=&hostIp=] */
export const UnpublishParams = Type.Object({ container: Container, hostPort: Type.Integer() })
export const UnpublishQuery = Type.Object(
  { protocol: Type.Optional(Protocol), hostIp: Type.Optional(HostIp) },
  { additionalProperties: false },
)
export const UnpublishReply = Type.Object({
  removed: Type.Array(
    Type.Object({
      hostIp: Type.Optional(HostIp),
      hostPort: Type.Integer(),
      containerPort: Type.Integer(),
      protocol: Protocol,
    }),
  ),
})
export type UnpublishReply = Static<typeof UnpublishReply>

export const PortErrors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody }
