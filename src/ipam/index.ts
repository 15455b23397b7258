import { join } from 'node:path'
import { type ClusterConfig, nodeRefreshMs } from '../cluster/config.js'
import type { MembersView } from '../cluster/service.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import type { Store } from '../store/types.js'
import { AddressAllocator } from './addresses.js'
import type { LeaseConfig } from './config.js'
import { LeaseManager } from './manager.js'
import { ipamMetrics } from './metrics.js'
import { NamedNetworks } from './networks.js'

export type { Allocation, AllocationResult, AttachmentKey } from './addresses.js'
export { AddressAllocator } from './addresses.js'
export type { CurrentLease, LeaseComponent, LeaseEvents, LeaseStatus } from './manager.js'
export { LeaseManager } from './manager.js'
export type { NamedNetwork } from './networks.js'
export { NamedNetworks } from './networks.js'

export interface IpamComponents {
  store: Store
  members?: MembersView
  config: {
    name: string
    stateDir: string
    runDir: string
    underlayAddress?: string
    underlayInterface?: string
    network: LeaseConfig
    cluster: Pick<
      ClusterConfig,
      'bootstrap' | 'syncIntervalMs' | 'refreshIntervalMs' | 'nodeTtlMs' | 'heartbeatIntervalMs'
    >
  }
  logger: Logger
  metrics: Metrics
  shutdown: AbortSignal
}

/**
 * The ipam service: the host-subnet lease (components.lease), the container
 * address allocator inside it (components.addresses), and the named networks'
 * blocks and allocators (components.networks), leased by the same timing.
 * When the lease moves to another subnet, allocations left in the old one are
 * logged and counted; `addresses.stale()` lists them for the CNI side.
 */
export async function createIpam(c: IpamComponents): Promise<{
  lease: LeaseManager
  addresses: AddressAllocator
  networks: NamedNetworks
  service: Startable
}> {
  const { seed, leaseTtlMs, leaseSettleMs, leaseRenewMs, leaseClockDriftMs } = c.config.network
  // A host with bootstrap peers joins before it claims; the first host of a cluster has nobody to wait for.
  const joined = () =>
    c.config.cluster.bootstrap.length === 0 ||
    (c.members?.hosts() ?? []).some((h) => !h.self && h.state === 'alive')
  // The lease is not tied to the node TTL: the store keeps a silent host's lease visible until the lease itself
  // expires, and the holder fences and withdraws before then unless a majority confirms it (README.md).
  const timing = {
    ttlMs: leaseTtlMs,
    settleMs: leaseSettleMs,
    driftMs: leaseClockDriftMs,
    ...(leaseRenewMs !== undefined ? { renewMs: leaseRenewMs } : {}),
    // a renewal reaches every connected host within a gossip hop or a sync round
    confirmDelayMs: Math.max(1000, 2 * c.config.cluster.syncIntervalMs),
    // a majority is "in reach" while its node records are no older than one refresh (and a probe period for delivery)
    contactMs: nodeRefreshMs(c.config.cluster) + c.config.cluster.heartbeatIntervalMs,
    joined,
    // a probe a live member answered is contact too, and far more frequent than its node record
    heardAt: () =>
      new Map(
        (c.members?.hosts() ?? [])
          .filter((h) => !h.self && h.state === 'alive')
          .map((h) => [h.peerId, Date.parse(h.lastHeard)]),
      ),
  }
  const lease = new LeaseManager(c, { ...timing, seed })
  const networks = new NamedNetworks(c, timing)
  const addresses = await AddressAllocator.open(join(c.config.stateDir, 'ipam'), () => lease.current()?.cidr)
  const log = c.logger.child({ component: 'ipam' })
  const reportStale = () => {
    const stale = addresses.stale()
    if (stale.length === 0) return
    ipamMetrics(c.metrics).staleAddresses.inc(stale.length)
    log.warn(
      { stale: stale.map((a) => `${a.containerId}/${a.ifname} ${a.address}`) },
      `${stale.length} container address(es) are outside this host's subnet ${lease.current()?.subnet}: the lease moved`,
    )
  }
  lease.on('acquired', reportStale)
  const service: Startable = {
    start: async () => {
      await lease.start()
      await networks.start()
    },
    stop: async () => {
      await networks.stop()
      await lease.stop()
    },
  }
  return { lease, addresses, networks, service }
}
