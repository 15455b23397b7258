// Schemas of the value shapes that records and the API share (TypeBox: JSON
// Schema with its TypeScript type derived, `Static<typeof X>` under the same
// name). Written once here, below every module: the API contract
// (src/api/contract/) builds its bodies and replies from them, so a port or a
// check means the same on the wire and in the store. Schemas only: nothing
// here compiles a validator (records.ts does, lazily).
import { type Static, Type } from '@sinclair/typebox'
import { MAX_ROUTES } from '../lib/addressing.js'
import { LABEL_KEY, StringEnum } from '../lib/schema.js'

/** a DNS label: service names, tags and port names all become one */
export const LABEL_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
export const Label = Type.String({ pattern: LABEL_PATTERN })

export const Protocol = StringEnum(['tcp', 'udp'])
export type Protocol = Static<typeof Protocol>

/** a port a service or an endpoint offers (SRV records, checks by port name) */
export const PortSpec = Type.Object(
  {
    name: Type.Optional(Label),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Protocol,
  },
  { additionalProperties: false },
)
export type PortSpec = Static<typeof PortSpec>

export const Tags = Type.Array(Label, { maxItems: 64, uniqueItems: true })
export const Ports = Type.Array(PortSpec, { maxItems: 64 })

/** a health check as written (defaults not filled in: checks.ts normalizeChecks) */
export const CheckInput = Type.Object(
  {
    /** unique within the service (a DNS label) */
    name: Label,
    type: StringEnum(['tcp', 'http', 'exec']),
    /** tcp/http: port number, or the name of one of the service's ports */
    port: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Label])),
    /** http: path, default / */
    path: Type.Optional(Type.String({ pattern: '^/', maxLength: 1024 })),
    /** http: expected status, default: any 2xx */
    status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    /** exec: argv run inside the endpoint's network namespace; exit 0 = passing */
    command: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 64 })),
    intervalMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 600_000 })),
    /** consecutive failures before the endpoint leaves answers */
    failures: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
)
export type CheckInput = Static<typeof CheckInput>
export const Checks = Type.Array(CheckInput, { maxItems: 16 })

/**
 * config/network as a user writes it (flannel's net-conf.json field names): the
 * types only, every field optional; src/ipam/config.ts parseNetworkConfig checks
 * meaning and names every bad field. Shared by the API and the agent config's seed.
 */
export const NetworkConfigInput = Type.Object(
  {
    Network: Type.Optional(Type.String()),
    SubnetLen: Type.Optional(Type.Integer()),
    SubnetMin: Type.Optional(Type.String()),
    SubnetMax: Type.Optional(Type.String()),
    Backend: Type.Optional(
      Type.Object(
        {
          Type: Type.Optional(Type.String()),
          VNI: Type.Optional(Type.Integer()),
          Port: Type.Optional(Type.Integer()),
          MTU: Type.Optional(Type.Integer()),
          DirectRouting: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    IPMasq: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

export const BACKEND_TYPES = ['vxlan', 'host-gw', 'wireguard'] as const
/** what a lease carries as backend type: a cluster backend, or `macvlan` for a block of a macvlan network's range */
export const LEASE_BACKEND_TYPES = [...BACKEND_TYPES, 'macvlan'] as const

/** config/network as stored: normalized, every default filled in, so all hosts derive the same ranges */
export const NetworkConfig = Type.Object({
  Network: Type.String(),
  SubnetLen: Type.Integer(),
  SubnetMin: Type.String(),
  SubnetMax: Type.String(),
  Backend: Type.Object({
    Type: StringEnum(BACKEND_TYPES),
    VNI: Type.Integer(),
    Port: Type.Integer(),
    /** absent: underlay MTU minus the encapsulation overhead, computed per host */
    MTU: Type.Optional(Type.Integer()),
    /** vxlan only: route directly (host-gw style) to hosts on the same L2 segment */
    DirectRouting: Type.Boolean(),
  }),
  IPMasq: Type.Boolean(),
})
export type NetworkConfig = Static<typeof NetworkConfig>

// ---- record values (src/store/codecs.ts: one codec per key prefix) ----
// Only what a reader relies on is required; other fields pass through, so a
// newer writer's extra fields do not make an older reader drop its records.

const Ipv4 = Type.String({ format: 'ipv4' })
const Port = Type.Integer({ minimum: 1, maximum: 65535 })

/** a port published on the host (DNAT to the container) */
export const PublishedPort = Type.Object({
  hostIp: Type.Optional(Ipv4),
  hostPort: Port,
  containerPort: Port,
  protocol: Protocol,
})

/** a WireGuard public key as `wg` prints it: base64 of 32 bytes (the last character carries 4 bits, hence its set) */
export const WG_KEY_PATTERN = '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$'
const Timestamp = Type.Number({ exclusiveMinimum: 0 })

/** leases/<peerId>; the subnet's and the endpoint's meaning are checked by src/ipam/leases.ts parseLease */
export const LeaseRecord = Type.Object({
  subnet: Type.String({ maxLength: 18 }),
  publicIp: Type.String({ format: 'ipv4' }),
  hostname: Label,
  backend: Type.Object({
    type: StringEnum(LEASE_BACKEND_TYPES),
    vtepMac: Type.Optional(Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' })),
    vni: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777215 })),
    publicKey: Type.Optional(Type.String({ pattern: WG_KEY_PATTERN })),
    nextPublicKey: Type.Optional(Type.String({ pattern: WG_KEY_PATTERN })),
    endpoint: Type.Optional(Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}:\\d{1,5}$' })),
  }),
  claimedAt: Timestamp,
  confirmedAt: Type.Optional(Timestamp),
})

/** the longest interface name Linux takes (IFNAMSIZ − 1), without '/', ':' or white space */
export const IFNAME_PATTERN = '^[A-Za-z0-9_.-]{1,15}$'

/**
 * config/networks/<name>: a named network as stored, normalized (every default filled in, so all hosts
 * derive the same blocks); a macvlan network's fields are checked by src/ipam/macvlan.ts parseMacvlanNetwork
 */
export const MacvlanNetworkRecord = Type.Object({
  name: Label,
  driver: StringEnum(['macvlan']),
  /** the host interface the sub-interfaces hang off; absent: each host's underlay interface */
  parent: Type.Optional(Type.String({ pattern: IFNAME_PATTERN })),
  subnet: Type.String({ maxLength: 18 }),
  range: Type.String({ maxLength: 18 }),
  gateway: Type.String({ format: 'ipv4' }),
  /** prefix length of the block of the range each host leases */
  blockLen: Type.Integer({ minimum: 1, maximum: 30 }),
  /** the containers' MTU; absent: the parent interface's on each host */
  mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 65535 })),
})

/** a bridge network's meaning is checked by src/ipam/bridge.ts parseBridgeNetwork */
export const BridgeNetworkRecord = Type.Object({
  name: Label,
  driver: StringEnum(['bridge']),
  cidr: Type.String({ maxLength: 18 }),
  /** prefix length of the subnet each host leases */
  subnetLen: Type.Integer({ minimum: 1, maximum: 30 }),
  /** absent in records written before bridge networks had a choice: vxlan */
  backend: Type.Optional(StringEnum(['vxlan', 'wireguard'])),
  vni: Type.Integer({ minimum: 1, maximum: 16777215 }),
  internal: Type.Boolean(),
})

export const NetworkRecord = Type.Union([MacvlanNetworkRecord, BridgeNetworkRecord])

/** config/network-links/<from>/<to>: `plexctl network connect` (src/ipam/bridge.ts) */
export const NetworkLinkRecord = Type.Object({
  from: Label,
  to: Label,
  ports: Type.Array(Type.Object({ port: Port, protocol: Protocol }), { maxItems: 64 }),
})

/** nodes/<peerId> */
export const NodeRecord = Type.Object({
  name: Type.String(),
  address: Type.String(),
  multiaddrs: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  capacity: Type.Optional(Type.Object({ cpus: Type.Number(), memoryMb: Type.Number() })),
  version: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String()),
  /** Vivaldi coordinate */
  coordinate: Type.Optional(
    Type.Object({
      vec: Type.Array(Type.Number(), { maxItems: 16 }),
      height: Type.Number(),
      error: Type.Number(),
      adjustment: Type.Number(),
    }),
  ),
  /** members this host probed without an answer: the record version it doubts, and since when */
  suspects: Type.Optional(
    Type.Record(Type.String(), Type.Object({ v: Type.Number(), since: Type.Number() }), {
      maxProperties: 4096,
    }),
  ),
})

/** endpoints/<peerId>/<containerId>/<ifname> */
export const EndpointRecord = Type.Object({
  containerId: Type.String({ minLength: 1 }),
  ifname: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1, maxLength: 253 }),
  host: Type.String(),
  ipv4: Ipv4,
  ipv6: Type.Optional(Type.String({ format: 'ipv6' })),
  netns: Type.Optional(Type.String()),
  /** the default route's next hop when not the bridge (a per-container gateway) */
  gateway: Type.Optional(Ipv4),
  /** extra routes on its interface */
  routes: Type.Optional(Type.Array(Type.Object({ dst: Type.String(), gw: Ipv4 }), { maxItems: MAX_ROUTES })),
  service: Type.Optional(Label),
  tags: Type.Optional(Tags),
  ports: Type.Optional(Ports),
  /** its service's checks as its runtime declared them (a job group's `service.checks`), defaults filled in */
  checks: Type.Optional(Checks),
  published: Type.Optional(Type.Array(PublishedPort, { maxItems: 64 })),
  /** the bridge network it is on (absent: the cluster network) */
  network: Type.Optional(Label),
  createdAt: Type.String(),
})

/**
 * netmembers/<peerId>/<network>/<containerId>/<ifname>: a container interface on a macvlan network,
 * which has no endpoint record (no veth, no bridge); written by the host that attached it
 */
export const NetMemberRecord = Type.Object({
  network: Label,
  containerId: Type.String({ minLength: 1 }),
  ifname: Type.String({ pattern: IFNAME_PATTERN }),
  /** node name of the owning host */
  host: Type.String(),
  address: Ipv4,
  prefixLength: Type.Integer({ minimum: 0, maximum: 32 }),
  mac: Type.Optional(Type.String()),
  mtu: Type.Integer({ minimum: 68, maximum: 65535 }),
  /** the default route's next hop ADD set: the network's gateway or the one the container asked for */
  gateway: Ipv4,
  routes: Type.Optional(Type.Array(Type.Object({ dst: Type.String(), gw: Ipv4 }), { maxItems: MAX_ROUTES })),
  netns: Type.String(),
  createdAt: Type.String(),
})

/** services/<name> */
export const ServiceRecord = Type.Object({
  name: Label,
  tags: Tags,
  ports: Ports,
  checks: Type.Optional(Checks),
})

/** registrations/<peerId>/<containerId>/<ifname>/<service> */
export const RegistrationRecord = Type.Object({
  service: Label,
  endpointKey: Type.String({ pattern: '^endpoints/' }),
  tags: Tags,
  ports: Ports,
  checks: Type.Optional(Checks),
})

/** health/<peerId>/<checkId> */
export const HealthRecord = Type.Object({
  endpointKey: Type.String(),
  status: StringEnum(['passing', 'critical']),
  service: Type.Optional(Type.String()),
  check: Type.Optional(Type.String()),
})

/** cpu in millicores, memory in MiB */
const Resources = Type.Object({
  cpu: Type.Integer({ minimum: 0, maximum: 1e9 }),
  memoryMb: Type.Integer({ minimum: 0, maximum: 1e9 }),
})

/** capacity/<peerId> */
export const CapacityRecord = Type.Object({ total: Resources, used: Resources, eligible: Type.Boolean() })

/** traffic/<peerId>: a bounded summary (src/traffic/README.md) */
export const TrafficRecord = Type.Object({
  /** the measuring host's name */
  host: Type.String({ maxLength: 253 }),
  /** when it was measured, ms since the epoch */
  at: Type.Integer({ minimum: 0 }),
  pairs: Type.Array(
    Type.Object({
      /** the service of the side that opened the connections */
      from: Label,
      /** the service of the side that answered */
      to: Label,
      /** both directions, decaying average (time constant: the record's tauMs) */
      bytesPerSec: Type.Number({ minimum: 0, maximum: 1e12 }),
    }),
    { maxItems: 256 },
  ),
  tauMs: Type.Integer({ minimum: 1 }),
})
export type TrafficValue = Static<typeof TrafficRecord>

const KeySegment = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^/]+$' })
const AllocId = Type.String({ pattern: '^[a-z0-9-]{1,200}$' })
const ExitCode = Type.Integer({ minimum: 0, maximum: 255 })
const Reason = Type.String({ maxLength: 1024 })

const allocFields = {
  id: AllocId,
  job: KeySegment,
  jobVersion: Type.Integer({ minimum: 1 }),
  group: KeySegment,
  slot: KeySegment,
  host: KeySegment,
  hostName: Type.String({ maxLength: 253 }),
  resources: Resources,
  createdAt: Type.Number({ minimum: 0 }),
  replaces: Type.Optional(AllocId),
  reschedule: Type.Optional(
    Type.Object(
      {
        attempt: Type.Integer({ minimum: 1, maximum: 1e6 }),
        since: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
  ),
}

/** allocs/<ownerPeerId>/<job>/<group>/<slot> */
export const AllocRecord = Type.Object(allocFields)

export const ALLOC_STATUSES = [
  'admitted',
  'pending',
  'starting',
  'running',
  'rejected',
  'complete',
  'failed',
  'lost',
] as const

/** allocstate/<hostPeerId>/<allocId> */
export const AllocStateRecord = Type.Object({
  ...allocFields,
  status: StringEnum(ALLOC_STATUSES),
  reason: Type.Optional(Reason),
  updatedAt: Type.Number({ minimum: 0 }),
  restarts: Type.Optional(Type.Integer({ minimum: 0 })),
  exitCode: Type.Optional(ExitCode),
  address: Type.Optional(Type.String({ maxLength: 64 })),
  tasks: Type.Optional(
    Type.Record(
      Type.String(),
      Type.Object({
        state: StringEnum(['pending', 'running', 'complete', 'failed', 'lost']),
        restarts: Type.Integer({ minimum: 0 }),
        exitCode: Type.Optional(ExitCode),
        reason: Type.Optional(Reason),
      }),
      { maxProperties: 32 },
    ),
  ),
})

/** one rule of an access policy: a KV key prefix ("" = every key), a service name ("*" = every service, "web*" = a prefix), or the operator routes */
export const AclRule = Type.Union([
  Type.Object(
    { kv: Type.String({ maxLength: 512 }), access: StringEnum(['read', 'write', 'deny']) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      service: Type.String({ pattern: '^(\\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\*?)$' }),
      access: StringEnum(['discover', 'register', 'deny']),
    },
    { additionalProperties: false },
  ),
  // the operator API's other routes over TCP (jobs, network, hosts…): read = GET, write = the rest
  Type.Object({ operator: StringEnum(['read', 'write', 'deny']) }, { additionalProperties: false }),
])
export type AclRule = Static<typeof AclRule>

/** acl/policies/<name>: rules for the containers of some services and some named containers */
export const AclPolicyRecord = Type.Object(
  {
    name: Label,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** every container that joined one of these services (its CNI service, not a self-registration) */
    services: Type.Optional(Type.Array(Label, { maxItems: 256, uniqueItems: true })),
    /** containers by name (<name>.ctr.plexus.internal) */
    containers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 256, uniqueItems: true }),
    ),
    rules: Type.Array(AclRule, { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false },
)
export type AclPolicyValue = Static<typeof AclPolicyRecord>

/** acl/default: what a request no rule matches gets ("allow" when the record is absent) */
export const AclDefaultRecord = Type.Object(
  { policy: StringEnum(['allow', 'deny']) },
  { additionalProperties: false },
)
export type AclDefaultValue = Static<typeof AclDefaultRecord>

/** acl/tokens/<sha256 of the secret, hex>: a token of the TCP operator API and the policies it carries (never the secret) */
export const AclTokenRecord = Type.Object(
  {
    name: Label,
    policies: Type.Array(Label, { minItems: 1, maxItems: 64, uniqueItems: true }),
    createdAt: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
)
export type AclTokenValue = Static<typeof AclTokenRecord>

/** config/labels/<host name>: labels an operator set on a host (`plexctl hosts label`), merged over the host's own */
export const LabelsRecord = Type.Record(
  Type.String({ pattern: LABEL_KEY }),
  Type.String({ maxLength: 256 }),
  {
    additionalProperties: false,
  },
)
export type LabelsValue = Static<typeof LabelsRecord>

/** config/drain/<host name>: present while the host is drained (`plexctl hosts drain`) */
export const DrainRecord = Type.Object({ since: Type.String({ maxLength: 64 }) })
export type DrainValue = Static<typeof DrainRecord>

/**
 * config/wireguard-rotation: the newest key rotation asked of every host (`plexctl network rotate-keys`);
 * each host rotates once per generation newer than the one it last took up (src/datapath/README.md)
 */
export const WireguardRotationRecord = Type.Object({
  generation: Type.Integer({ minimum: 1 }),
  /** ms epoch, the requesting agent's clock */
  requestedAt: Timestamp,
})
export type WireguardRotationValue = Static<typeof WireguardRotationRecord>

/** how many earlier versions a job record keeps */
export const JOB_HISTORY_KEEP = 10

/** a job's spec, as far as the store checks it: the spec's own rules are the scheduler's (src/scheduler/spec.ts) */
const JobSpecShape = Type.Object({ name: Type.String() })

/**
 * jobs/<name>: the job as submitted, its version, and its earlier versions
 * (`plexctl job history`); an old spec is checked again only if it runs again
 */
export const JobRecord = Type.Object({
  spec: JobSpecShape,
  version: Type.Integer({ minimum: 1 }),
  submittedAt: Type.String({ maxLength: 64 }),
  stopped: Type.Boolean(),
  history: Type.Optional(
    Type.Array(
      Type.Object({
        version: Type.Integer({ minimum: 1 }),
        spec: Type.Object({}),
        submittedAt: Type.String({ maxLength: 64 }),
      }),
      { maxItems: JOB_HISTORY_KEEP },
    ),
  ),
  rebalance: Type.Optional(
    Type.Object({
      at: Type.String({ maxLength: 64 }),
      moves: Type.Array(
        Type.Object({ alloc: Type.String({ maxLength: 256 }), to: Type.String({ maxLength: 128 }) }),
        { maxItems: 10_000 },
      ),
    }),
  ),
})
