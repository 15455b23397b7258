// Value shapes of the well-known keys (see the key layout in types.ts).
// Writers encode and readers decode them through their prefix's codec
// (codecs.ts), because a value that arrived by gossip is outside input.

/** nodes/<peerId>: membership record, refreshed by its owner (readers need only name and address). */
export interface NodeValue {
  name: string
  /** underlay address other hosts reach it at */
  address: string
  /** libp2p multiaddrs it listens on (used to re-dial) */
  multiaddrs?: string[]
  labels?: Record<string, string>
  capacity?: { cpus: number; memoryMb: number }
  version?: string
  startedAt?: string
  /** Vivaldi coordinate (Serf variant) */
  coordinate?: { vec: number[]; height: number; error: number; adjustment: number }
  /**
   * The members this host probed and got no answer from, by peer id (src/cluster/detector.ts).
   * Present (maybe empty) on every agent that probes; absent on an agent of an earlier release, which
   * writes this record every heartbeat period instead.
   */
  suspects?: Record<string, { v: number; since: number }>
}

/** leases/<peerId>: the host subnet this host holds. */
export interface LeaseValue {
  /** CIDR, e.g. 10.244.3.0/24 */
  subnet: string
  /** underlay address other hosts send overlay traffic to */
  publicIp: string
  hostname: string
  backend: {
    /** macvlan: the lease holds a block of a macvlan network's range (netleases/<peerId>/<network>) */
    type: 'vxlan' | 'host-gw' | 'wireguard' | 'macvlan'
    vtepMac?: string
    vni?: number
    /** wireguard: this host's public key (base64, as `wg` prints it) */
    publicKey?: string
    /** wireguard, while this host rotates its key: the key it will take next (peers add it beside publicKey) */
    nextPublicKey?: string
    /** wireguard: where it listens, address:port */
    endpoint?: string
  }
  /** when this claim started (kept across renewals, new on re-claim): the older live claim wins a conflict */
  claimedAt: number
  /**
   * the wall time of the holder's newest renewal that a majority of the cluster had heard of when this one
   * was written (src/ipam/README.md): a restarted holder fences and withdraws from it, not from its restart;
   * absent while the claim settles (a claim without it was never acquired and is not resumed)
   */
  confirmedAt?: number
}

/** config/networks/<name>: a named network, macvlan (src/ipam/macvlan.ts) or bridge (src/ipam/bridge.ts) */
export type NetworkValue = MacvlanNetworkValue | BridgeNetworkValue

/** a macvlan network: containers on the underlay's own subnet */
export interface MacvlanNetworkValue {
  name: string
  driver: 'macvlan'
  parent?: string
  /** the underlay subnet the containers' addresses are in */
  subnet: string
  /** the part of it handed to containers, split into blocks between hosts */
  range: string
  gateway: string
  blockLen: number
  /** the containers' MTU; absent: the parent interface's on each host */
  mtu?: number
}

/** a bridge network: an overlay of its own (a subnet of `cidr` per host, a bridge and a VXLAN device of its VNI) */
export type BridgeBackend = 'vxlan' | 'wireguard'

export interface BridgeNetworkValue {
  name: string
  driver: 'bridge'
  cidr: string
  /** prefix length of each host's subnet */
  subnetLen: number
  /** vxlan: a VTEP per host with the network's VNI; wireguard: its hosts are peers of each host's one WireGuard device */
  backend: BridgeBackend
  /** the network's VXLAN network identifier; a wireguard network holds one too (one per network), unused by its devices */
  vni: number
  /** no masquerade and no forwarding out of the network: its containers reach only each other (and linked networks) */
  internal: boolean
}

/** config/network-links/<from>/<to>: containers of `from` may open connections to containers of `to` */
export interface NetworkLinkValue {
  from: string
  to: string
  /** the ports allowed; empty: every port */
  ports: { port: number; protocol: 'tcp' | 'udp' }[]
}

export interface PortSpec {
  name?: string
  port: number
  protocol: 'tcp' | 'udp'
}

export interface PublishedPort {
  hostIp?: string
  hostPort: number
  containerPort: number
  protocol: 'tcp' | 'udp'
}

/** endpoints/<peerId>/<containerId>/<ifname>: one container interface attached on this host. */
export interface EndpointValue {
  containerId: string
  ifname: string
  /** container name (DNS <name>.ctr.plexus.internal); defaults to the short container id */
  name: string
  /** orchestrator namespace (K8S_POD_NAMESPACE) if any */
  namespace?: string
  /** node name of the owning host */
  host: string
  /** address without prefix length */
  ipv4: string
  ipv6?: string
  mac: string
  netns: string
  hostVeth: string
  /** the default route's next hop when the attachment asked for one other than the bridge */
  gateway?: string
  /** extra routes the attachment asked for, each gw filled in */
  routes?: { dst: string; gw: string }[]
  service?: string
  tags?: string[]
  ports?: PortSpec[]
  /** checks of its `service` declared with the attachment (a job group's): every one must pass before it is healthy */
  checks?: CheckSpec[]
  published?: PublishedPort[]
  /** the bridge network it is on (absent: the cluster network) */
  network?: string
  labels: Record<string, string>
  createdAt: string
}

/** netmembers/<peerId>/<network>/<containerId>/<ifname>: a container interface on a macvlan network */
export interface NetMemberValue {
  network: string
  containerId: string
  ifname: string
  /** node name of the owning host */
  host: string
  address: string
  prefixLength: number
  mac?: string
  mtu: number
  /** the default route's next hop ADD set (the network's gateway, or the one asked for) */
  gateway: string
  /** extra routes the attachment asked for, each gw filled in */
  routes?: { dst: string; gw: string }[]
  netns: string
  createdAt: string
}

/** A health check with its defaults filled in (checks.ts normalizeChecks). */
export interface CheckSpec {
  /** unique within the service (a DNS label) */
  name: string
  type: 'tcp' | 'http' | 'exec'
  /** tcp/http: port number, or the name of one of the service's ports */
  port?: number | string
  /** http: path, default / */
  path?: string
  /** http: expected status, default: any 2xx */
  status?: number
  /** exec: argv run inside the endpoint's network namespace; exit 0 = passing */
  command?: string[]
  intervalMs: number
  timeoutMs: number
  /** consecutive failures before the endpoint leaves answers */
  failures: number
}

/** services/<name>: shared service definition, with the health checks every endpoint of the service gets. */
export interface ServiceValue {
  name: string
  tags: string[]
  ports: PortSpec[]
  checks?: CheckSpec[]
}

/**
 * registrations/<peerId>/<containerId>/<ifname>/<service>: an endpoint joined to a
 * service through the API, usually with a TTL its owner refreshes. Written
 * only by the endpoint's own host.
 */
export interface RegistrationValue {
  service: string
  endpointKey: string
  tags: string[]
  ports: PortSpec[]
  checks?: CheckSpec[]
}

/** health/<peerId>/<checkId>: result of a health check the owning host runs on one of its endpoints. */
export interface HealthValue {
  endpointKey: string
  /** the service whose check this is (absent: applies to every service of the endpoint) */
  service?: string
  /** check name within the service */
  check?: string
  status: 'passing' | 'critical'
  output: string
  checkedAt: string
}

// ---- the scheduler's and the runner's records (src/scheduler/records.ts) ----

/** cpu in millicores, memory in MiB (the units of a task's resources) */
export interface Resources {
  cpu: number
  memoryMb: number
}

/** capacity/<peerId> */
export interface CapacityValue {
  /** what the host offers (from the host, overridable in config) */
  total: Resources
  /** what the allocations it admitted use */
  used: Resources
  /** false while drained: no new placements */
  eligible: boolean
}

/** allocs/<ownerPeerId>/<job>/<group>/<slot> */
export interface AllocValue {
  /** stable across owner changes: a new owner adopts the slot with the same id */
  id: string
  job: string
  jobVersion: number
  group: string
  /** the slot within the group: its index, or the host's peer id for a system job */
  slot: string
  /** peer id of the host that runs it */
  host: string
  hostName: string
  resources: Resources
  /** ms epoch when the slot was first placed (settles duplicates: the older wins) */
  createdAt: number
  /** set on the replacement of a failed allocation: its place in the slot's run of failures */
  reschedule?: RescheduleTracker
  /** set on a replacement brought up beside a running allocation (update, drain): that allocation's id */
  replaces?: string
}

export type AllocStatus =
  | 'admitted'
  | 'rejected'
  | 'pending'
  | 'starting'
  | 'running'
  | 'complete'
  | 'failed'
  | 'lost'

/** allocstate/<hostPeerId>/<allocId>: carries the allocation's identity so a new owner can adopt it */
export interface AllocStateValue extends AllocValue {
  status: AllocStatus
  /** why it was rejected or why it last failed */
  reason?: string
  updatedAt: number
  /** the runner's: restarts of its tasks so far, the last exit status, its address, each task's state */
  restarts?: number
  exitCode?: number
  address?: string
  tasks?: Record<string, AllocTaskState>
}

/** One task of a running allocation, as the runner reports it. */
export interface AllocTaskState {
  state: 'pending' | 'running' | 'complete' | 'failed' | 'lost'
  restarts: number
  exitCode?: number
  reason?: string
}

/** What the replacement of a failed allocation carries: its place in the run of failures of its slot. */
export interface RescheduleTracker {
  /** 1 for the first replacement in the window */
  attempt: number
  /** ms epoch of the failure that opened the window */
  since: number
}
