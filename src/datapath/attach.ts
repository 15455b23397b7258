// Container attachments in the kernel, for the CNI path (src/endpoints): the
// veth pair with its container end made directly in the container's
// namespace, the host end on plexus0 (or a bridge network's bridge), the container side's address, link,
// default route and the extra routes it asked for; what is there (CHECK, a repeated ADD, inspect, crash
// recovery); removal. endpoints/ keeps the orchestration (undo stack,
// journal, recovery decisions) and reaches the kernel only through this
// interface (components.datapath.attachments), so it opens no netlink socket.
import { isPlexusError, PlexusError } from '../lib/errors.js'
import { BRIDGE_NAME } from './model.js'
import { type LinkInfo, Netlink } from './netlink.js'
import { assertNetnsPath } from './netns.js'

export interface VethRequest {
  /** the host end's name (a leftover of that name is removed first) */
  hostVeth: string
  /** the container's namespace (a resolved path) and its end's name there */
  nsPath: string
  ifname: string
  mtu: number
  mac?: string
  /** the bridge the host end goes on (default plexus0; a bridge network's `plxb-…`) */
  bridge?: string
}

export interface ContainerAddress {
  nsPath: string
  ifname: string
  address: string
  prefixLength: number
  /** the default route's next hop: the bridge, or the address the container asked for */
  gateway: string
  /** extra routes through the interface, each with its next hop */
  routes?: { dst: string; gateway: string }[]
}

export interface MacvlanRequest {
  /** the host interface it hangs off (the network's parent, or the underlay interface) */
  parent: string
  nsPath: string
  ifname: string
  /** absent: the parent's own MTU (the kernel's default for a macvlan) */
  mtu?: number
  mac?: string
}

/** One attachment as the kernel has it (CHECK compares it with the record). */
export interface AttachmentObservation {
  hostVeth?: { up: boolean; master?: number; mtu: number; mac?: string }
  bridgeIndex?: number
  container?: {
    up: boolean
    mtu: number
    mac?: string
    addresses: string[]
    defaultGateways: string[]
    /** a default route through another interface (which then owns the default) */
    otherDefault?: boolean
    /** every other route through this interface */
    routes: { dst: string; gateway?: string }[]
  }
}

/** The host end as plexctl inspect shows it. */
export interface HostEndView {
  name: string
  up: boolean
  mtu: number
  mac?: string
  /** enslaved to its network's bridge */
  bridge: boolean
}

/** The container end as plexctl inspect shows it. */
export interface ContainerEndView {
  ifname: string
  /** veth, macvlan, ... */
  kind?: string
  up: boolean
  mtu: number
  mac?: string
  addresses: string[]
  routes: { dst: string; gateway?: string }[]
  /** next hops of the default routes through this interface */
  defaultGateways: string[]
  /** a default route through another interface (which then owns the default) */
  otherDefault: boolean
}

/**
 * Who has the default route, seen from interface `index`: the next hops through it, and whether another
 * interface has one (a container on several networks: the first interface's stays in charge).
 */
function defaults(
  routes: { dst: string; gateway?: string; oif?: number }[],
  index: number,
): { defaultGateways: string[]; otherDefault: boolean } {
  const dflt = routes.filter((r) => r.dst === '0.0.0.0/0')
  return {
    defaultGateways: dflt
      .filter((r) => r.gateway && (r.oif === undefined || r.oif === index))
      .map((r) => r.gateway as string),
    otherDefault: dflt.some((r) => r.oif !== undefined && r.oif !== index),
  }
}

/** The kernel effects of attaching containers (components.datapath.attachments). */
export interface Attachments {
  /**
   * Makes the veth pair and puts the host end, up, on plexus0 (made by a pass
   * first if missing). PLX_NETLINK_EXISTS when `ifname` is taken in the namespace.
   */
  createVeth(r: VethRequest): Promise<{ hostMac?: string }>
  /**
   * Gives the container end its address, brings it up and routes everything
   * via the gateway, unless another interface has the default route, then adds
   * the extra routes. PLX_ATTACH_ROUTE_TAKEN when the namespace already has a
   * route to one of their destinations (the caller removes the veth, and so
   * whatever was added). Returns the container end's MAC (undefined: it has none).
   */
  configure(a: ContainerAddress): Promise<string | undefined>
  /** `bridge`: the one the host end should be on (default plexus0) */
  observe(hostVeth: string, nsPath: string, ifname: string, bridge?: string): Promise<AttachmentObservation>
  hostEnd(hostVeth: string, bridge?: string): Promise<HostEndView | undefined>
  /** throws when netns is not a namespace path or cannot be entered */
  containerEnd(netns: string, ifname: string): Promise<ContainerEndView | undefined>
  /**
   * Makes a macvlan sub-interface (bridge mode) of the host's `parent` directly in the namespace as
   * `ifname`. PLX_NETLINK_EXISTS when `ifname` is taken there, PLX_ATTACH_NO_PARENT when the host
   * has no interface `parent`.
   */
  createMacvlan(r: MacvlanRequest): Promise<void>
  /** removes `ifname` in the namespace (a macvlan has no host end); false: there was none */
  deleteContainerEnd(nsPath: string, ifname: string): Promise<boolean>
  /** removes a host end (and so its container end, wherever that is); false: there was none */
  deleteHostVeth(name: string): Promise<boolean>
  /** names of every veth in the host namespace */
  hostVeths(): Promise<string[]>
  bridgePresent(): Promise<boolean>
}

export class ContainerAttacher implements Attachments {
  /** ensureBridge: the datapath's, which runs a pass when the bridge is missing */
  constructor(
    private readonly nl: Netlink,
    private readonly ensureBridge: (name: string) => Promise<void>,
  ) {}

  close(): void {
    this.nl.close()
  }

  private async bridge(name: string): Promise<LinkInfo> {
    const existing = await this.nl.getLink(name)
    if (existing) return existing
    await this.ensureBridge(name)
    return this.nl.linkByName(name)
  }

  async deleteHostVeth(name: string): Promise<boolean> {
    try {
      await this.nl.deleteLink(name)
      return true
    } catch (err) {
      if (isPlexusError(err, 'PLX_NETLINK_NOT_FOUND')) return false
      throw err
    }
  }

  async createVeth(r: VethRequest): Promise<{ hostMac?: string }> {
    const bridge = await this.bridge(r.bridge ?? BRIDGE_NAME)
    // A leftover from an agent killed mid-ADD.
    await this.deleteHostVeth(r.hostVeth)
    const host = await this.nl.createVeth(
      r.hostVeth,
      { name: r.ifname, nsPath: r.nsPath, ...(r.mac ? { mac: r.mac } : {}) },
      { mtu: r.mtu },
    )
    await this.nl.setLink(host.index, { master: bridge.index, up: true })
    return host.mac ? { hostMac: host.mac } : {}
  }

  async createMacvlan(r: MacvlanRequest): Promise<void> {
    const parent = await this.nl.getLink(r.parent)
    if (!parent) throw new PlexusError('PLX_ATTACH_NO_PARENT', `this host has no interface ${r.parent}`)
    await this.nl.createMacvlan(r.ifname, parent.index, {
      nsPath: r.nsPath,
      ...(r.mtu !== undefined ? { mtu: r.mtu } : {}),
      ...(r.mac ? { mac: r.mac } : {}),
    })
  }

  async deleteContainerEnd(nsPath: string, ifname: string): Promise<boolean> {
    const ns = Netlink.open(nsPath)
    try {
      await ns.deleteLink(ifname)
      return true
    } catch (err) {
      if (isPlexusError(err, 'PLX_NETLINK_NOT_FOUND')) return false
      throw err
    } finally {
      ns.close()
    }
  }

  async configure(a: ContainerAddress): Promise<string | undefined> {
    const ns = Netlink.open(a.nsPath)
    try {
      const link = await ns.linkByName(a.ifname)
      await ns.addAddress(link.index, a.address, a.prefixLength)
      await ns.setLink(link.index, { up: true })
      try {
        await ns.addRoute({ dst: '0.0.0.0/0', gateway: a.gateway, oif: link.index })
      } catch (err) {
        // Another interface (a second network, an earlier plugin) already has the
        // default route: it stays in charge (the bridge plugin's isDefaultGateway=false).
        if (!isPlexusError(err, 'PLX_NETLINK_EXISTS')) throw err
      }
      // one at a time: the first refusal names its route, and the rest is not tried
      for (const r of a.routes ?? []) {
        try {
          await ns.addRoute({ dst: r.dst, gateway: r.gateway, oif: link.index })
        } catch (err) {
          if (!isPlexusError(err, 'PLX_NETLINK_EXISTS')) throw err
          throw new PlexusError(
            'PLX_ATTACH_ROUTE_TAKEN',
            `${a.nsPath} already has a route to ${r.dst}; ${a.ifname} cannot take it`,
          )
        }
      }
      return link.mac
    } finally {
      ns.close()
    }
  }

  async observe(
    hostVeth: string,
    nsPath: string,
    ifname: string,
    bridgeName = BRIDGE_NAME,
  ): Promise<AttachmentObservation> {
    const [host, bridge] = await Promise.all([this.nl.getLink(hostVeth), this.nl.getLink(bridgeName)])
    const observed: AttachmentObservation = {}
    if (host) {
      observed.hostVeth = {
        up: host.up,
        mtu: host.mtu,
        ...(host.master ? { master: host.master } : {}),
        ...(host.mac ? { mac: host.mac } : {}),
      }
    }
    if (bridge) observed.bridgeIndex = bridge.index
    const ns = Netlink.open(nsPath)
    try {
      const link = await ns.getLink(ifname)
      if (link) {
        const [addrs, routes] = await Promise.all([ns.addresses(link.index), ns.routes()])
        observed.container = {
          up: link.up,
          mtu: link.mtu,
          ...(link.mac ? { mac: link.mac } : {}),
          addresses: addrs.map((a) => `${a.address}/${a.prefixLen}`),
          ...defaults(routes, link.index),
          routes: routes
            .filter((r) => r.dst !== '0.0.0.0/0' && r.oif === link.index)
            .map((r) => ({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) })),
        }
      }
    } finally {
      ns.close()
    }
    return observed
  }

  async hostEnd(hostVeth: string, bridgeName = BRIDGE_NAME): Promise<HostEndView | undefined> {
    const [host, bridge] = await Promise.all([this.nl.getLink(hostVeth), this.nl.getLink(bridgeName)])
    if (!host) return undefined
    return {
      name: host.name,
      up: host.up,
      mtu: host.mtu,
      ...(host.mac ? { mac: host.mac } : {}),
      bridge: bridge !== undefined && host.master === bridge.index,
    }
  }

  async containerEnd(netns: string, ifname: string): Promise<ContainerEndView | undefined> {
    assertNetnsPath(netns)
    const ns = Netlink.open(netns)
    try {
      const link = await ns.getLink(ifname)
      if (!link) return undefined
      const [addrs, routes] = await Promise.all([ns.addresses(link.index), ns.routes()])
      return {
        ifname: link.name,
        ...(link.kind ? { kind: link.kind } : {}),
        up: link.up,
        mtu: link.mtu,
        ...(link.mac ? { mac: link.mac } : {}),
        addresses: addrs.map((a) => `${a.address}/${a.prefixLen}`),
        routes: routes.map((r) => ({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) })),
        ...defaults(routes, link.index),
      }
    } finally {
      ns.close()
    }
  }

  async hostVeths(): Promise<string[]> {
    return (await this.nl.links({ kind: 'veth' })).map((l) => l.name)
  }

  async bridgePresent(): Promise<boolean> {
    return (await this.nl.getLink(BRIDGE_NAME)) !== undefined
  }
}
