// The service catalog: definitions, registrations, members with their health
// (operator API), and the calling container's own registration (application API).
import { type Static, Type } from '@sinclair/typebox'
import { StringEnum } from '../../lib/schema.js'
import { CheckInput, Checks, Label, PortSpec, Ports, Tags } from '../../store/schemas.js'
import { Flag } from './common.js'

/** GET /v1/services: a service, its definition and how many members are healthy on which host */
export const ServiceSummary = Type.Object({
  name: Type.String(),
  /** false: only registrations name it, no definition */
  defined: Type.Boolean(),
  tags: Type.Array(Type.String()),
  ports: Type.Array(PortSpec),
  checks: Type.Optional(Type.Array(CheckInput)),
  healthy: Type.Integer(),
  total: Type.Integer(),
  hosts: Type.Array(Type.Object({ host: Type.String(), healthy: Type.Integer(), total: Type.Integer() })),
})
export type ServiceSummary = Static<typeof ServiceSummary>
export const ServicesReply = Type.Array(ServiceSummary)

/** one endpoint in a service, with its health */
export const ServiceMember = Type.Object({
  endpointKey: Type.String(),
  host: Type.String(),
  name: Type.String(),
  ipv4: Type.String(),
  ipv6: Type.Optional(Type.String()),
  tags: Type.Array(Type.String()),
  ports: Type.Array(PortSpec),
  healthy: Type.Boolean(),
  /** how it joined: its CNI ADD, or a registration through the API */
  source: StringEnum(['cni', 'api']),
  /** the names of the checks it gets */
  checks: Type.Array(Type.String()),
  /** each check's last result, written by the member's host; pending until its first */
  checkStates: Type.Array(
    Type.Object({ check: Type.String(), status: StringEnum(['passing', 'critical', 'pending'] as const) }),
  ),
  /** when a TTL registration lapses */
  expiresAt: Type.Optional(Type.String()),
})
export type ServiceMember = Static<typeof ServiceMember>

/** GET /v1/services/<name>: the summary and every member */
export const ServiceDetail = Type.Composite([
  ServiceSummary,
  Type.Object({ endpoints: Type.Array(ServiceMember) }),
])
export type ServiceDetail = Static<typeof ServiceDetail>

/** GET /v1/health/service/<name> (Consul's): the members with their health */
export const HealthQuery = Type.Object(
  {
    /** only members whose checks pass */
    passing: Type.Optional(Flag),
    /** only members with this tag */
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    /** nearest first from this host (its name), or `_agent` (the host answering) */
    near: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
  },
  { additionalProperties: false },
)
export const HealthReply = Type.Array(ServiceMember)

/** PUT /v1/services/<name> (the name comes from the path) */
export const ServiceBody = Type.Object(
  { tags: Type.Optional(Tags), ports: Type.Optional(Ports), checks: Type.Optional(Checks) },
  { additionalProperties: false },
)
export type ServiceBody = Static<typeof ServiceBody>

/** PUT /v1/endpoints/<id>/register: an endpoint of this host joins a service */
export const RegistrationBody = Type.Object(
  {
    service: Label,
    ifname: Type.Optional(Type.String({ minLength: 1, maxLength: 15 })),
    tags: Type.Optional(Tags),
    ports: Type.Optional(Ports),
    checks: Type.Optional(Checks),
    /** absent: until deregistered; else the registration drops out unless refreshed within this time */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
  },
  { additionalProperties: false },
)
export type RegistrationBody = Static<typeof RegistrationBody>

/** `:id` of an endpoint: container id or name on this host */
export const EndpointIdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 253 }) })

/** DELETE /v1/endpoints/<id>/register?service=&ifname= */
export const DeregisterQuery = Type.Object({ service: Type.String(), ifname: Type.Optional(Type.String()) })

/** a registration as written: its key, the endpoint it names, when it lapses (TTL) */
export const Registered = Type.Object({
  key: Type.String(),
  endpointKey: Type.String(),
  expiresAt: Type.Optional(Type.String()),
})
export type Registered = Static<typeof Registered>

/** GET /v1/agent/self (application API): the calling container as this agent knows it */
export const AgentSelf = Type.Object({
  endpointKey: Type.String(),
  containerId: Type.String(),
  ifname: Type.String(),
  name: Type.String(),
  ipv4: Type.String(),
  host: Type.String(),
  service: Type.Optional(Type.String()),
})
export type AgentSelf = Static<typeof AgentSelf>

/** PUT /v1/agent/service (application API): the caller's own endpoint joins a service */
export const SelfRegistrationBody = Type.Object(
  {
    service: Label,
    tags: Type.Optional(Tags),
    ports: Type.Optional(Ports),
    /** a TTL check: the registration lapses unless `PUT /v1/agent/service/<service>/pass` comes within this time */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
  },
  { additionalProperties: false },
)
export type SelfRegistrationBody = Static<typeof SelfRegistrationBody>
