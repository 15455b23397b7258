// CNI ADD/DEL/CHECK for a container on a named macvlan network (issue 17
// item 3): a macvlan sub-interface of the host's parent interface (bridge
// mode) made directly in the container's namespace, an address of this host's
// block of the network's range, the network's gateway (or the one the
// container asked for) and its extra routes. Unlike the overlay there is no
// host end, no bridge and no endpoint record: the allocation (persisted before
// anything is made, keyed by container and interface) is the attachment, so a
// repeated ADD, DEL and CHECK find it there; the kernel side is the
// datapath's (components.datapath.attachments). What ADD set (address, MAC,
// gateway, routes, MTU) is published as netmembers/<self>/<network>/<cid>/<ifname>,
// so every host lists the network's members and CHECK compares with it.
import type { Attachments } from '../datapath/attach.js'
import { assertNotHostNetns, resolveNetns } from '../datapath/netns.js'
import { cidrOf } from '../ipam/cidr.js'
import { netMemberKey } from '../ipam/macvlan.js'
import type { NamedNetwork } from '../ipam/networks.js'
import { isPlexusError, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import { netMemberCodec } from '../store/codecs.js'
import type { MacvlanNetworkValue, NetMemberValue } from '../store/records.js'
import type { Store } from '../store/types.js'
import {
  type AttachmentKey,
  type AttachRequest,
  assertAddressing,
  type CniResult,
  resolveRoutes,
  splitStaticIp,
} from './model.js'

export interface MacvlanComponents {
  networks: { get(name: string): NamedNetwork | undefined; list(): NamedNetwork[] }
  links: Attachments
  logger: Logger
  store: Store
  peerId: string
  /** this host's node name, for the member records */
  host: string
}

/** What ADD made, as the result and CHECK describe it. */
interface Facts {
  ifname: string
  netns: string
  address: string
  prefixLength: number
  gateway: string
  routes?: { dst: string; gw: string }[]
  mac?: string
  /** absent: the parent's, whatever it is (not checked) */
  mtu?: number
}

function result(f: Facts & { mtu: number }, dns: AttachRequest['dns']): CniResult {
  return {
    cniVersion: '1.1.0',
    interfaces: [{ name: f.ifname, ...(f.mac ? { mac: f.mac } : {}), mtu: f.mtu, sandbox: f.netns }],
    ips: [{ address: `${f.address}/${f.prefixLength}`, gateway: f.gateway, interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: f.gateway }, ...(f.routes ?? [])],
    // the host's Plexus DNS listens on the bridge, which a macvlan container does not reach: the runtime's
    // own DNS config (or the one the network config names) stands
    dns: dns ?? {},
  }
}

type MacvlanNetwork = NamedNetwork<MacvlanNetworkValue>

const isMacvlan = (n: NamedNetwork): n is MacvlanNetwork => n.network.driver === 'macvlan'

export class MacvlanEndpoints {
  constructor(private readonly c: MacvlanComponents) {}

  /** the macvlan network holding an allocation for this attachment, if any */
  owner(k: AttachmentKey): MacvlanNetwork | undefined {
    return this.c.networks
      .list()
      .filter(isMacvlan)
      .find((n) => n.addresses.get(k))
  }

  private network(name: string): MacvlanNetwork {
    const n = this.c.networks.get(name)
    if (!n || !isMacvlan(n))
      throw new PlexusError(
        'PLX_ENDPOINTS_NO_NETWORK',
        `no ${n ? 'macvlan ' : ''}network named ${JSON.stringify(name)} on this host (plexctl network ls)`,
      )
    return n
  }

  /** A repeated ADD returns what the first made when the kernel still has it; anything else is made anew, rolled back on failure. */
  async attach(req: AttachRequest & { namedNetwork: string }): Promise<CniResult> {
    const n = this.network(req.namedNetwork)
    // the container is on the underlay itself: a host port to DNAT to it would be a second way to the same thing
    if (req.published?.length)
      throw new PlexusError(
        'PLX_PORTS_INVALID',
        `published ports do not apply on macvlan network ${n.network.name}: its containers are on the underlay`,
      )
    const block = n.lease.current()
    if (!block) {
      const s = n.lease.status()
      throw new PlexusError(
        'PLX_ENDPOINTS_NO_LEASE',
        `this host holds no block of network ${n.network.name} yet (${s.state}${s.reason ? `: ${s.reason}` : ''})`,
      )
    }
    if (n.lease.status().state === 'fenced')
      throw new PlexusError(
        'PLX_ENDPOINTS_FENCED',
        `the block ${block.subnet} of ${n.network.name} is fenced`,
      )
    const subnet = cidrOf(n.network.subnet)
    assertAddressing(req, subnet)
    const nsPath = resolveNetns(req.netns, req.netnsHandle)
    assertNotHostNetns(nsPath, req.netns)
    const address = req.ip ? splitStaticIp(req.ip, subnet.prefix) : undefined
    const gateway = req.gateway ?? n.network.gateway
    const routes = resolveRoutes(req.routes, gateway)
    const facts = (a: string, mac?: string): Facts => ({
      ifname: req.ifname,
      netns: req.netns,
      address: a,
      prefixLength: subnet.prefix,
      gateway,
      ...(routes ? { routes } : {}),
      ...(mac ? { mac } : {}),
      ...(n.network.mtu !== undefined ? { mtu: n.network.mtu } : {}),
    })

    const existing = n.addresses.get(req)
    if (existing) {
      if (address && address !== existing.address)
        throw new PlexusError(
          'PLX_ENDPOINTS_CONFLICT',
          `${req.containerId}/${req.ifname} is already attached with address ${existing.address}, not ${address}; DEL it first`,
        )
      const f = facts(existing.address, req.mac)
      const problems = await this.problems(f, nsPath, undefined)
      if (problems.length === 0) return this.publish(n, req, f, nsPath)
      // damaged: made again with the same address (allocate() below returns it)
      await this.c.links.deleteContainerEnd(nsPath, req.ifname)
    }

    const undo: (() => Promise<unknown>)[] = []
    try {
      const alloc = await n.addresses.allocate({ containerId: req.containerId, ifname: req.ifname, address })
      undo.push(() => n.addresses.release(req))
      // a gateway or route next hop the container asked for may have just become its own address
      if (!address) assertAddressing({ gateway: req.gateway, routes: req.routes }, subnet, alloc.address)
      try {
        await this.c.links.createMacvlan({
          parent: n.network.parent ?? block.underlayInterface,
          nsPath,
          ifname: req.ifname,
          ...(n.network.mtu !== undefined ? { mtu: n.network.mtu } : {}),
          ...(req.mac ? { mac: req.mac } : {}),
        })
      } catch (err) {
        if (isPlexusError(err, 'PLX_NETLINK_EXISTS'))
          throw new PlexusError(
            'PLX_ENDPOINTS_IFNAME_TAKEN',
            `interface ${req.ifname} already exists in ${req.netns}`,
          )
        throw err
      }
      undo.push(() => this.c.links.deleteContainerEnd(nsPath, req.ifname))
      const mac = await this.c.links.configure({
        nsPath,
        ifname: req.ifname,
        address: alloc.address,
        prefixLength: subnet.prefix,
        gateway,
        ...(routes ? { routes: routes.map((r) => ({ dst: r.dst, gateway: r.gw })) } : {}),
      })
      const res = await this.publish(n, req, facts(alloc.address, mac), nsPath)
      undo.length = 0
      return res
    } finally {
      for (const u of undo.reverse()) {
        try {
          await u()
        } catch (err) {
          this.c.logger.warn(
            { err, attachment: `${req.containerId}/${req.ifname}` },
            'ADD rollback step failed',
          )
        }
      }
    }
  }

  /**
   * The member record, written (when it differs) before ADD answers, with the MAC and MTU the kernel gave
   * the interface; then the result.
   */
  private async publish(n: MacvlanNetwork, req: AttachRequest, f: Facts, nsPath: string): Promise<CniResult> {
    const end = await this.end(nsPath, f.ifname)
    if (!end) throw new PlexusError('PLX_ENDPOINTS_INTERNAL', `${f.ifname} vanished from ${f.netns}`)
    const key = this.memberKey(n, req)
    const old = this.member(key)
    const value: NetMemberValue = {
      network: n.network.name,
      containerId: req.containerId,
      ifname: f.ifname,
      host: this.c.host,
      address: f.address,
      prefixLength: f.prefixLength,
      ...(end.mac ? { mac: end.mac } : {}),
      mtu: end.mtu,
      gateway: f.gateway,
      ...(f.routes ? { routes: f.routes } : {}),
      netns: f.netns,
      createdAt: old?.createdAt ?? new Date().toISOString(),
    }
    if (JSON.stringify(old) !== JSON.stringify(value))
      await this.c.store.put(key, netMemberCodec.encode(value))
    return result({ ...f, ...(end.mac ? { mac: end.mac } : {}), mtu: end.mtu }, req.dns)
  }

  private memberKey(n: MacvlanNetwork, k: AttachmentKey): string {
    // only the key's fields: a request's own `network` is the CNI config's name, not the named network
    return netMemberKey(this.c.peerId, {
      network: n.network.name,
      containerId: k.containerId,
      ifname: k.ifname,
    })
  }

  private member(key: string): NetMemberValue | undefined {
    const rec = this.c.store.get(key)
    return rec ? netMemberCodec.valueOf(rec) : undefined
  }

  /** Idempotent: the interface goes (when the namespace is still there), the member record and the address. */
  async detach(
    n: MacvlanNetwork,
    k: AttachmentKey & { netns?: string; netnsHandle?: AttachRequest['netnsHandle'] },
  ) {
    if (k.netns) {
      try {
        const nsPath = resolveNetns(k.netns, k.netnsHandle)
        assertNotHostNetns(nsPath, k.netns)
        await this.c.links.deleteContainerEnd(nsPath, k.ifname)
      } catch (err) {
        // a namespace already gone took the interface with it
        if (!isPlexusError(err, 'PLX_NETNS_NOT_FOUND')) throw err
      }
    }
    const key = this.memberKey(n, k)
    if (this.c.store.get(key)) await this.c.store.delete(key)
    await n.addresses.release(k)
  }

  /**
   * CHECK: the interface in the namespace against the member record ADD wrote (the gateway and routes it
   * set, the MAC and MTU the interface got), else the allocation and the network; every difference named.
   */
  async check(
    n: MacvlanNetwork,
    k: AttachmentKey & { netns: string; netnsHandle?: AttachRequest['netnsHandle'] },
    prevIps?: string[],
  ) {
    const alloc = n.addresses.get(k)
    const block = n.lease.current()
    if (!alloc || !block)
      throw new PlexusError(
        'PLX_ENDPOINTS_UNKNOWN',
        `no attachment ${k.containerId}/${k.ifname} on this host`,
      )
    const m = this.member(this.memberKey(n, k))
    const mtu = m?.mtu ?? n.network.mtu
    const f: Facts = {
      ifname: k.ifname,
      netns: k.netns,
      address: alloc.address,
      prefixLength: cidrOf(n.network.subnet).prefix,
      gateway: m?.gateway ?? n.network.gateway,
      ...(m?.routes ? { routes: m.routes } : {}),
      ...(m?.mac ? { mac: m.mac } : {}),
      ...(mtu !== undefined ? { mtu } : {}),
    }
    const problems = await this.problems(f, resolveNetns(k.netns, k.netnsHandle), prevIps)
    if (problems.length)
      throw new PlexusError(
        'PLX_ENDPOINTS_CHECK_FAILED',
        `CHECK ${k.containerId}/${k.ifname}: ${problems.join('; ')}`,
        {
          problems,
        },
      )
  }

  private end(nsPath: string, ifname: string) {
    return this.c.links.containerEnd(nsPath, ifname)
  }

  /**
   * What differs between the kernel and the facts. The default route must go through the gateway ADD set,
   * unless another interface has the default (a container on several networks), as the overlay's CHECK.
   */
  private async problems(f: Facts, nsPath: string, prevIps: string[] | undefined): Promise<string[]> {
    const end = await this.end(nsPath, f.ifname)
    if (!end) return [`${f.ifname} is missing in ${f.netns}`]
    const problems: string[] = []
    const want = `${f.address}/${f.prefixLength}`
    if (end.kind !== 'macvlan') problems.push(`${f.ifname} is a ${end.kind ?? 'device'}, not a macvlan`)
    if (!end.up) problems.push(`${f.ifname} is down`)
    if (!end.addresses.includes(want)) problems.push(`${f.ifname} lacks its address ${want}`)
    if (f.mac && end.mac !== f.mac) problems.push(`${f.ifname} has MAC ${end.mac}, not ${f.mac}`)
    if (f.mtu !== undefined && end.mtu !== f.mtu)
      problems.push(`${f.ifname} has MTU ${end.mtu}, not ${f.mtu}`)
    if (!end.defaultGateways.includes(f.gateway) && !end.otherDefault)
      problems.push(`no default route via ${f.gateway} on ${f.ifname}`)
    for (const r of f.routes ?? [])
      if (!end.routes.some((o) => o.dst === r.dst && o.gateway === r.gw))
        problems.push(`route ${r.dst} via ${r.gw} is missing`)
    for (const ip of prevIps ?? [])
      if (ip !== want) problems.push(`prevResult has ${ip}, the attachment ${want}`)
    return problems
  }
}
