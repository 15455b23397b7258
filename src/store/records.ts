// Value shapes of the well-known keys (see the key layout in types.ts).
// Writers validate against these before put; readers validate before use,
// because a value that arrived by gossip is outside input.

/** nodes/<peerId>: membership heartbeat, refreshed by its owner. */
export interface NodeValue {
  name: string
  /** underlay address other hosts reach it at */
  address: string
  /** libp2p multiaddrs it listens on (used to re-dial) */
  multiaddrs: string[]
  labels: Record<string, string>
  capacity?: { cpus: number; memoryMb: number }
  version: string
  startedAt: string
  /** Vivaldi coordinate (Serf variant) */
  coordinate?: { vec: number[]; height: number; error: number; adjustment: number }
}

/** leases/<peerId>: the host subnet this host holds. */
export interface LeaseValue {
  /** CIDR, e.g. 10.244.3.0/24 */
  subnet: string
  /** underlay address other hosts send overlay traffic to */
  publicIp: string
  hostname: string
  backend: {
    type: 'vxlan' | 'host-gw' | 'wireguard'
    vtepMac?: string
    vni?: number
    /** wireguard: this host's public key (base64, as `wg` prints it) */
    publicKey?: string
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
  service?: string
  tags?: string[]
  ports?: PortSpec[]
  published?: PublishedPort[]
  labels: Record<string, string>
  createdAt: string
}

/** services/<name>: shared service definition. */
export interface ServiceValue {
  name: string
  tags: string[]
  ports: PortSpec[]
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
