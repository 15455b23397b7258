// The routes the CNI plugin (cni/plexus) calls on its host's agent. The
// plugin takes these types only (cni/lib/agent-api.ts, `import type`), so its
// bundle and start-up carry no schema code. Errors carry the CNI error the
// plugin prints (`cni: {code, msg, details}`) next to the usual {error, message}.
import { type Static, Type } from '@sinclair/typebox'
import { MAX_ROUTES } from '../../lib/addressing.js'
import { StringEnum } from '../../lib/schema.js'
import { Checks, Label, PortSpec } from '../../store/schemas.js'

const Name = Type.String({ minLength: 1, maxLength: 253 })
const ContainerId = Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$', maxLength: 256 })
const Ifname = Type.String({ minLength: 1, maxLength: 15, pattern: '^[^/:\\s]+$' })
/** CNI_NETNS as the runtime named it (the result's `sandbox`) */
const Netns = Type.String({ pattern: '^/' })
const Protocol = StringEnum(['tcp', 'udp'])
const Strings = Type.Array(Type.String())
/** a dotted quad; what it may be (inside the host subnet…) is checked by src/lib/addressing.ts */
const Ipv4Text = Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}$' })

/** one container interface, as CNI names it */
export const Attachment = Type.Object({ containerId: ContainerId, ifname: Ifname })
export type Attachment = Static<typeof Attachment>

/**
 * The container's namespace as the plugin holds it open: the agent opens
 * /proc/<pid>/fd/<fd>, a magic link that reaches the namespace even when the
 * runtime (and so CNI_NETNS) lives in another mount namespace. `ino` is the
 * namespace's inode, so the agent never takes another process's descriptor
 * for it (a plugin in another PID namespace sends a pid the agent cannot use).
 */
export const NetnsHandle = Type.Object(
  {
    pid: Type.Integer({ minimum: 1 }),
    fd: Type.Integer({ minimum: 0 }),
    ino: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)
export type NetnsHandle = Static<typeof NetnsHandle>

export const CniDns = Type.Object(
  {
    nameservers: Type.Optional(Strings),
    domain: Type.Optional(Type.String()),
    search: Type.Optional(Strings),
    options: Type.Optional(Strings),
  },
  { additionalProperties: false },
)

export { PortSpec }

/** an extra route in the container, as the CNI result spells it */
const Route = Type.Object(
  { dst: Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$' }), gw: Type.Optional(Ipv4Text) },
  { additionalProperties: false },
)

/** a host port published to a container port (the runtime's portMappings) */
export const PortMapping = Type.Object(
  {
    hostIp: Type.Optional(Type.String()),
    hostPort: Type.Integer({ minimum: 0, maximum: 65535 }),
    containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Protocol,
  },
  { additionalProperties: false },
)
export type PortMapping = Static<typeof PortMapping>

/** the interface in its namespace, as ADD and CHECK name it */
const InNamespace = {
  ...Attachment.properties,
  netns: Netns,
  netnsHandle: Type.Optional(NetnsHandle),
}

/** POST /v1/cni/add: one container interface, resolved by the plugin */
export const AttachRequest = Type.Object(
  {
    ...InNamespace,
    network: Name,
    /** a named (macvlan) Plexus network to attach to instead of the overlay (plexctl network create) */
    namedNetwork: Type.Optional(Label),
    name: Type.Optional(Name),
    namespace: Type.Optional(Name),
    service: Type.Optional(Label),
    tags: Type.Optional(Type.Array(Label)),
    labels: Type.Record(Type.String(), Type.String()),
    ports: Type.Optional(Type.Array(PortSpec)),
    /** health checks of `service` for this endpoint (defaults and cross-field rules: src/store/checks.ts) */
    checks: Type.Optional(Checks),
    published: Type.Optional(Type.Array(PortMapping)),
    /** static address, "a.b.c.d" or "a.b.c.d/len" */
    ip: Type.Optional(Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}(/\\d{1,2})?$' })),
    mac: Type.Optional(Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' })),
    /** the container's default route goes through this address of the host subnet instead of the bridge */
    gateway: Type.Optional(Ipv4Text),
    /** extra routes on the container interface (gw absent: the container's gateway) */
    routes: Type.Optional(Type.Array(Route, { maxItems: MAX_ROUTES })),
    dns: Type.Optional(CniDns),
  },
  { additionalProperties: false },
)
export type AttachRequest = Static<typeof AttachRequest>

/** the CNI result in its newest (1.1.0) shape: the plugin converts it to the runtime's version */
export const AttachReply = Type.Object({
  cniVersion: Type.String(),
  interfaces: Type.Array(
    Type.Object({
      name: Type.String(),
      mac: Type.Optional(Type.String()),
      mtu: Type.Optional(Type.Integer()),
      sandbox: Type.Optional(Type.String()),
    }),
  ),
  ips: Type.Array(
    Type.Object({
      /** CIDR: address with prefix length */
      address: Type.String(),
      gateway: Type.Optional(Type.String()),
      /** index into interfaces */
      interface: Type.Optional(Type.Integer()),
    }),
  ),
  routes: Type.Array(Type.Object({ dst: Type.String(), gw: Type.Optional(Type.String()) })),
  dns: CniDns,
})
export type AttachReply = Static<typeof AttachReply>

/** POST /v1/cni/del */
export const DetachRequest = Type.Object(
  {
    ...Attachment.properties,
    /** may be empty: the runtime already removed the namespace */
    netns: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
export type DetachRequest = Static<typeof DetachRequest>

/** POST /v1/cni/check */
export const CheckRequest = Type.Object(
  {
    ...InNamespace,
    /** the runtime's cached result, already validated by the plugin; only its ips are compared */
    prevResult: Type.Optional(
      Type.Unsafe<{ ips?: { address: string }[] }>(Type.Object({}, { additionalProperties: true })),
    ),
  },
  { additionalProperties: false },
)
export type CheckRequest = Static<typeof CheckRequest>

const Attachments = Type.Array(
  Type.Object({ containerId: ContainerId, ifname: Ifname }, { additionalProperties: false }),
)

/** POST /v1/cni/gc: every attachment of the network but these is released */
export const GcRequest = Type.Object(
  { network: Name, validAttachments: Attachments },
  { additionalProperties: false },
)
export type GcRequest = Static<typeof GcRequest>
export const GcReply = Type.Object({ released: Attachments })

/** DEL and CHECK */
export const CniOk = Type.Object({ ok: Type.Boolean() })

/** GET /v1/cni/status: ready to attach containers */
export const CniStatus = Type.Object({
  subnet: Type.String(),
  gateway: Type.String(),
  mtu: Type.Integer(),
  endpoints: Type.Integer(),
})

/** the most stdin POST /v1/cni/invoke carries (a network config is a few KiB) */
const MAX_STDIN = 1 << 20

/**
 * POST /v1/cni/invoke: a whole CNI invocation as the plugin's native front end
 * (cni/front/) forwards it: the CNI_* environment, stdin as it came, and the
 * container's namespace held open. The answer is what the plugin would have
 * printed (application/octet-stream, exit status and stderr length in headers).
 */
export const InvokeRequest = Type.Object(
  {
    env: Type.Record(Type.String(), Type.String({ maxLength: 4096 }), {
      maxProperties: 32,
      propertyNames: { pattern: '^CNI_[A-Z_]{1,32}$' },
    }),
    stdin: Type.String({ maxLength: MAX_STDIN }),
    netnsHandle: Type.Optional(NetnsHandle),
  },
  { additionalProperties: false },
)
export type InvokeRequest = Static<typeof InvokeRequest>

/** every CNI route's error: the agent's code and the CNI error for the plugin to print */
export const CniErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  cni: Type.Optional(
    Type.Object({ code: Type.Integer(), msg: Type.String(), details: Type.Optional(Type.String()) }),
  ),
})
export type CniErrorBody = Static<typeof CniErrorBody>
export const CniErrors = { 400: CniErrorBody, 500: CniErrorBody, 503: CniErrorBody }
