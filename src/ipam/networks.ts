import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Startable } from '../lib/startable.js'
import { networkCodec } from '../store/codecs.js'
import type { NetworkValue } from '../store/records.js'
import { NET_LEASE_PREFIX, NET_MEMBER_PREFIX, NETWORKS_PREFIX } from '../store/types.js'
import { AddressAllocator } from './addresses.js'
import { addressRange, leaseConfig, parseNamedNetwork } from './bridge.js'
import { netLeaseKeys } from './macvlan.js'
import {
  LeaseManager,
  type LeaseManagerComponents,
  type LeaseManagerInit,
  type SubnetMemory,
} from './manager.js'

// The named networks on this host (macvlan and bridge): for each valid record
// under config/networks/ one lease manager, which leases a block of the
// network's range (a host subnet of a bridge network's cidr) by the cluster
// network's own rules, and one address allocator inside that block. Reconciled from the store: a network that appears is opened, one
// that is deleted is closed and leaves nothing (its lease record, its
// allocations). The datapath and the endpoints read `get(name)`.

export interface NamedNetwork<N extends NetworkValue = NetworkValue> {
  network: N
  /** this host's block of the range (current() is its CurrentLease) */
  lease: LeaseManager
  addresses: AddressAllocator
}

export interface NamedNetworksComponents extends LeaseManagerComponents {
  config: LeaseManagerComponents['config'] & { stateDir: string }
}

/**
 * A block is remembered by its live lease record alone (a restart within the
 * TTL resumes it): subnet.env is flannel's file for the cluster network.
 */
const NO_MEMORY: SubnetMemory = { read: async () => undefined, write: async () => undefined }

export class NamedNetworks implements Startable {
  private readonly log: Logger
  private readonly open = new Map<string, NamedNetwork>()
  /** records already reported invalid, so each is logged once */
  private readonly reported = new Set<string>()
  private unwatch?: () => void
  private pass: Promise<void> = Promise.resolve()

  constructor(
    private readonly c: NamedNetworksComponents,
    private readonly init: Omit<LeaseManagerInit, 'seed' | 'space' | 'subnetMemory'>,
  ) {
    this.log = c.logger.child({ component: 'ipam' })
  }

  get(name: string): NamedNetwork | undefined {
    return this.open.get(name)
  }

  list(): NamedNetwork[] {
    return [...this.open.values()]
  }

  async start(): Promise<void> {
    this.unwatch = this.c.store.watch(NETWORKS_PREFIX, () => void this.sync())
    await this.sync()
  }

  async stop(): Promise<void> {
    this.unwatch?.()
    await this.pass
    // the lease records stay: a restart within the TTL keeps the blocks
    await Promise.all([...this.open.values()].map((n) => n.lease.stop()))
    this.open.clear()
  }

  /** One pass at a time: a network deleted and created again is closed before it is opened anew. */
  sync(): Promise<void> {
    this.pass = this.pass.then(() =>
      this.reconcile().catch((err) => this.log.error({ err }, `named networks: ${errorMessage(err)}`)),
    )
    return this.pass
  }

  private wanted(): Map<string, NetworkValue> {
    const out = new Map<string, NetworkValue>()
    for (const rec of this.c.store.list(NETWORKS_PREFIX)) {
      const decoded = networkCodec.decode(rec)
      try {
        if (!decoded.ok) throw new Error(decoded.reason)
        out.set(decoded.value.name, parseNamedNetwork(decoded.value))
      } catch (err) {
        const why = `${rec.key} written by ${rec.owner} is ignored: ${errorMessage(err)}`
        if (!this.reported.has(why)) this.log.warn(why)
        this.reported.add(why)
      }
    }
    return out
  }

  private async reconcile(): Promise<void> {
    const wanted = this.wanted()
    for (const [name, n] of this.open) {
      const want = wanted.get(name)
      if (!want || JSON.stringify(want) !== JSON.stringify(n.network)) await this.close(name)
    }
    for (const [name, network] of wanted) if (!this.open.has(name)) await this.openNetwork(network)
    // a lease or member record of ours for a network that is gone (deleted while this agent was down) goes too
    for (const prefix of [NET_LEASE_PREFIX, NET_MEMBER_PREFIX])
      for (const rec of this.c.store.list(`${prefix}${this.c.store.self}/`)) {
        const name = rec.key.split('/')[2]
        if (name !== undefined && !wanted.has(name)) await this.c.store.delete(rec.key)
      }
  }

  private dir(name: string): string {
    return join(this.c.config.stateDir, 'ipam', 'networks', name)
  }

  private async openNetwork(network: NetworkValue): Promise<void> {
    const lease = new LeaseManager(this.c, {
      ...this.init,
      seed: false,
      subnetMemory: NO_MEMORY,
      space: {
        label: `network ${network.name}`,
        keys: netLeaseKeys(network.name),
        configKey: `${NETWORKS_PREFIX}${network.name}`,
        parseConfig: (v) => leaseConfig(parseNamedNetwork(v)),
        // a bridge network's leases carry vxlan data of its VNI, published by the datapath as the cluster's
        ...(network.driver === 'macvlan' ? { backend: { type: 'macvlan' } } : {}),
      },
    })
    const addresses = await AddressAllocator.open(this.dir(network.name), () => lease.current()?.cidr)
    await lease.start()
    this.open.set(network.name, { network, lease, addresses })
    this.log.info(
      { network: network.name, range: addressRange(network) },
      `network ${network.name}: leasing a block`,
    )
  }

  /** Gives the block up and forgets the allocations: the network is gone, and so are its containers' addresses. */
  private async close(name: string): Promise<void> {
    const n = this.open.get(name)
    if (!n) return
    this.open.delete(name)
    const left = n.addresses.list()
    // `network rm` refuses while members are listed (network.ts), but --force, or a member whose record had
    // not reached the host that removed it, still gets here
    if (left.length)
      this.log.warn(
        { network: name, attachments: left.map((a) => `${a.containerId}/${a.ifname} ${a.address}`) },
        `network ${name} removed with ${left.length} container(s) attached: their interfaces stay until DEL, their addresses are no longer reserved`,
      )
    await n.lease.stop()
    await this.c.store.delete(netLeaseKeys(name).key(this.c.store.self))
    // the members' records go with their addresses (src/endpoints/macvlan.ts wrote them)
    for (const rec of this.c.store.list(`${NET_MEMBER_PREFIX}${this.c.store.self}/${name}/`))
      await this.c.store.delete(rec.key)
    await rm(this.dir(name), { recursive: true, force: true })
    this.log.info({ network: name }, `network ${name} removed: block lease and addresses released`)
  }
}
