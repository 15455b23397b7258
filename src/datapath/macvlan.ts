// The host's way to its own macvlan containers (issue 17 item 3). A macvlan
// parent never hears its sub-interfaces (the kernel hands their frames to
// each other or to the wire, not up its own stack), so Docker users add a
// "shim" by hand: one more macvlan of the parent, in the host, with an
// address of the network and a route to the containers through it. Plexus
// makes it per named network from the store: the shim `plxm-<hash of the
// name>` on the network's parent (default: the underlay interface), the first
// host address of this host's block as a /32 (addresses.ts never hands it to
// a container), and the block routed through the shim. Reconciled like the
// rest of the datapath (after every change of config/networks/ or
// netleases/, and on the timer): made when missing, repaired when it drifts,
// removed with the network or the block.
import { cidrOf, formatCidr } from '../ipam/cidr.js'
import { validLeases } from '../ipam/leases.js'
import { blockConfig, netLeaseKeys, shimAddress } from '../ipam/macvlan.js'
import { namedNetworks } from '../ipam/network.js'
import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import { PassLoop } from '../lib/pass-loop.js'
import type { Startable } from '../lib/startable.js'
import { NET_LEASE_PREFIX, NETWORKS_PREFIX, type ReadableStore } from '../store/types.js'
import { networkDeviceName } from './model.js'
import type { Netlink } from './netlink.js'

/** every shim Plexus makes is named so: what is not wanted under this prefix is ours to remove */
export const SHIM_PREFIX = 'plxm-'

/** the shim of one named network on this host */
export interface ShimSpec {
  network: string
  /** the device name: SHIM_PREFIX + 8 hex digits of the network's name (IFNAMSIZ allows 15) */
  name: string
  parent: string
  /** its address, without prefix length (a /32) */
  address: string
  /** this host's block, routed through the shim */
  block: string
}

export function shimName(network: string): string {
  return networkDeviceName(SHIM_PREFIX, network)
}

/** Pure: the shims this host should have, one per named network it holds a valid block of. */
export function desiredShims(store: ReadableStore, underlayInterface: string, now = Date.now()): ShimSpec[] {
  return namedNetworks(store).flatMap((net) => {
    if (net.driver !== 'macvlan') return []
    const keys = netLeaseKeys(net.name)
    const own = validLeases(store.list(NET_LEASE_PREFIX), blockConfig(net), now, keys).valid.find(
      (l) => l.peerId === store.self,
    )
    if (!own) return []
    return [
      {
        network: net.name,
        name: shimName(net.name),
        parent: net.parent ?? underlayInterface,
        address: shimAddress(own.subnet),
        block: formatCidr(own.subnet),
      },
    ]
  })
}

export interface ShimComponents {
  store: ReadableStore
  logger: Logger
  /** the underlay interface, once the cluster lease has found it (the default parent) */
  underlayInterface: () => string | undefined
  intervalMs: number
}

export class MacvlanShims implements Startable {
  private readonly loop: PassLoop
  private readonly log: Logger

  constructor(
    private readonly nl: Netlink,
    private readonly c: ShimComponents,
  ) {
    this.log = c.logger.child({ component: 'datapath' })
    this.loop = new PassLoop({
      debounceMs: 50,
      intervalMs: c.intervalMs,
      index: () => c.store.index,
      pass: () => this.pass(),
      onError: (err) => this.log.error({ err }, `macvlan shims: ${errorMessage(err)}`),
      watch: { store: c.store, prefixes: [NETWORKS_PREFIX, NET_LEASE_PREFIX] },
    })
  }

  start(): Promise<void> {
    return this.loop.start()
  }

  stop(): Promise<void> {
    return this.loop.stop()
  }

  private async pass(): Promise<void> {
    const underlay = this.c.underlayInterface()
    // without the underlay a network's default parent is unknown: its shim waits, nothing is removed
    const wanted = underlay ? desiredShims(this.c.store, underlay) : []
    // a shim is a macvlan: only macvlans are parsed, not the host's container veths
    const links = await this.nl.links({ kind: 'macvlan' })
    for (const s of wanted) {
      const problems: string[] = []
      try {
        await this.ensure(s, problems)
      } catch (err) {
        problems.push(errorMessage(err))
      }
      if (problems.length)
        this.log.warn({ network: s.network, shim: s.name }, `shim ${s.name}: ${problems.join('; ')}`)
    }
    if (!underlay) return
    const keep = new Set(wanted.map((s) => s.name))
    for (const l of links)
      if (l.name.startsWith(SHIM_PREFIX) && !keep.has(l.name)) {
        await this.nl.deleteLink(l.name)
        this.log.info({ shim: l.name }, `removed shim ${l.name}: its network or block is gone`)
      }
  }

  /** Makes the shim as `s` says, or repairs what differs (its routes go with a re-made device). */
  private async ensure(s: ShimSpec, said: string[]): Promise<void> {
    const parent = await this.nl.getLink(s.parent)
    if (!parent) {
      said.push(`the parent interface ${s.parent} is missing`)
      return
    }
    let shim = await this.nl.getLink(s.name)
    if (shim && (shim.kind !== 'macvlan' || shim.parent !== parent.index)) {
      said.push('not a macvlan of its parent: made again')
      await this.nl.deleteLink(s.name)
      shim = undefined
    }
    if (!shim) {
      await this.nl.createMacvlan(s.name, parent.index)
      shim = await this.nl.linkByName(s.name)
    }
    if (!shim.up) await this.nl.setLink(shim.index, { up: true })
    const addrs = await this.nl.addresses(shim.index)
    for (const a of addrs)
      if (a.address !== s.address || a.prefixLen !== 32)
        await this.nl.deleteAddress(shim.index, a.address, a.prefixLen)
    if (!addrs.some((a) => a.address === s.address && a.prefixLen === 32))
      await this.nl.addAddress(shim.index, s.address, 32)
    const block = cidrOf(s.block)
    const routes = (await this.nl.routes()).filter(
      (r) => r.oif === shim?.index && r.dst !== `${s.address}/32`,
    )
    for (const r of routes)
      if (r.dst !== formatCidr(block)) await this.nl.deleteRoute({ dst: r.dst, oif: shim.index })
    // the block through the shim: more specific than the underlay's own subnet route, so the host's
    // packets for its containers leave by the shim (from its address) and never by the parent
    await this.nl.replaceRoute({ dst: s.block, oif: shim.index })
  }
}
