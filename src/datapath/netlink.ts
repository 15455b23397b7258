// A small typed wrapper over the `netlink` package's rtnetlink socket: the
// link, address, route, neighbour and FDB operations Plexus needs, with
// addresses as strings and kernel errors mapped to PlexusError codes.
import { closeSync, constants as fsConstants, openSync } from 'node:fs'
import { constants as osConstants } from 'node:os'
import {
  AttrStream,
  createRtNetlink,
  FlagsGet,
  FlagsNew,
  getString,
  ifla,
  parseAttributes,
  type RequestOptions,
  type RtNetlinkSendOptions,
  type RtNetlinkSocket,
  rt,
} from 'netlink'
import { formatIPv4 } from '../ipam/cidr.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import { findAttr } from '../lib/nlattr.js'
import { bufToIp, bufToMac, cidr, ipToBuf, macToBuf } from './addr.js'
import { assertNetnsPath, withNetns } from './netns.js'

const AF_INET = 2
const AF_BRIDGE = 7
const RT_TABLE_MAIN = 254
/** rtm_flags bit RTNH_F_ONLINK: gateway is on-link even if no address says so */
const RTNH_F_ONLINK = 4
/** IFLA_LINKINFO nested attributes */
const IFLA_INFO_KIND = 1
const IFLA_INFO_DATA = 2
/** linux/if_link.h MACVLAN_MODE_BRIDGE */
const MACVLAN_MODE_BRIDGE = 4
const VETH_INFO_PEER = 1
/**
 * rtm_protocol stamped on every route Plexus installs, so dumps and cleanup
 * can tell ours from everyone else's (values >= RTPROT_STATIC are not
 * interpreted by the kernel; 77 is unassigned in iproute2's rt_protos).
 */
export const RTPROT_PLEXUS = 77
const REQUEST_TIMEOUT_MS = 5000
/** sizeof(struct ifinfomsg) */
const IFINFOMSG_LEN = 16

/** what a link is picked by in a dump, before it is parsed */
export interface LinkPick {
  index: number
  name: string
  kind?: string
}

export interface VxlanInfo {
  vni: number
  port: number
  local?: string
  /** ifindex of the underlay device */
  dev?: number
  learning: boolean
}

export interface LinkInfo {
  index: number
  name: string
  /** IFLA_INFO_KIND: bridge, veth, vxlan, ... (undefined for physical devices) */
  kind?: string
  mtu: number
  mac?: string
  up: boolean
  master?: number
  vxlan?: VxlanInfo
  /** IFLA_LINK: the lower device of a macvlan (or vxlan), by index in its namespace */
  parent?: number
}

export interface AddressInfo {
  ifindex: number
  address: string
  prefixLen: number
}

export interface RouteInfo {
  /** CIDR */
  dst: string
  gateway?: string
  oif?: number
  onlink: boolean
  protocol: number
  scope: number
  table: number
}

/** the answer of a route lookup: RTN type (unicast, local, unreachable, …), output device, next hop */
export interface RouteLookup {
  type: string
  oif?: number
  gateway?: string
  prefsrc?: string
}

export interface RouteSpec {
  dst: string
  gateway?: string
  oif?: number
  onlink?: boolean
  /** defaults to RTPROT_PLEXUS */
  protocol?: number
  /** defaults to universe (0), or link (253) when there is no gateway */
  scope?: number
}

export interface NeighbourInfo {
  ifindex: number
  ip: string
  mac?: string
  permanent: boolean
}

export interface FdbInfo {
  ifindex: number
  mac: string
  /** remote VTEP for VXLAN entries */
  dst?: string
  permanent: boolean
}

export interface LinkChange {
  up?: boolean
  mtu?: number
  /** ifindex of the new master, 0 to detach */
  master?: number
  mac?: string
  name?: string
}

const ERRNO_NAMES: Record<string, number> = osConstants.errno as unknown as Record<string, number>

/** Maps the package's "Request rejected: EEXIST" errors to typed PlexusErrors. */
function netlinkError(op: string, err: unknown): PlexusError {
  if (err instanceof PlexusError) return err
  const message = errorMessage(err)
  const name = /Request rejected: (\w+)/.exec(message)?.[1]
  const errno = name ? ERRNO_NAMES[name] : undefined
  const details = { op, errno, errnoName: name }
  if (name === 'EEXIST') return new PlexusError('PLX_NETLINK_EXISTS', `${op}: already exists`, details)
  if (name === 'ENOENT' || name === 'ENODEV' || name === 'ESRCH' || name === 'EADDRNOTAVAIL') {
    return new PlexusError('PLX_NETLINK_NOT_FOUND', `${op}: not found (${name})`, details)
  }
  return new PlexusError('PLX_NETLINK_FAILED', `${op}: ${message}`, details)
}

function routeNumber(v: number | string | undefined, table: Record<string, number | string>): number {
  if (typeof v === 'number') return v
  if (v === undefined) return 0
  return Number(table[v] ?? 0)
}

/** attribute types (linux/if_link.h) a link is picked by before it is parsed */
const IFLA_IFNAME = 3
const IFLA_LINKINFO = 18
/** a link message's index, name and kind, read without parsing the rest of it */
function pickOf(body: Buffer): LinkPick {
  const attrs = body.subarray(IFINFOMSG_LEN)
  const name = findAttr(attrs, IFLA_IFNAME)
  const info = findAttr(attrs, IFLA_LINKINFO)
  const kind = info && findAttr(info, IFLA_INFO_KIND)
  return {
    // ifi_index, after ifi_family, a pad byte and ifi_type
    index: body.readInt32LE(4),
    name: name ? getString(name) : '',
    ...(kind ? { kind: getString(kind) } : {}),
  }
}

function nested(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>()
  parseAttributes(buf, (a) => out.set(a.type & 0x3fff, a.data))
  return out
}

function linkFromMessage(m: rt.LinkMessage): LinkInfo {
  const a = m.attrs
  const info: LinkInfo = {
    index: m.data.index ?? 0,
    name: a.ifname ?? '',
    mtu: a.mtu ?? 0,
    up: m.data.flags?.up === true,
  }
  if (a.address && a.address.length === 6) info.mac = bufToMac(a.address)
  if (a.master) info.master = a.master
  if (a.link && a.link.length === 4) info.parent = a.link.readUInt32LE(0)
  if (a.linkinfo) {
    const li = nested(a.linkinfo)
    const kind = li.get(IFLA_INFO_KIND)
    if (kind) info.kind = getString(kind)
    const data = li.get(IFLA_INFO_DATA)
    if (info.kind === 'vxlan' && data) {
      const v = ifla.parseVxlan(data)
      info.vxlan = {
        vni: v.id ?? 0,
        port: v.port ? v.port.readUInt16BE(0) : 0,
        learning: v.learning === 1,
        ...(v.local ? { local: bufToIp(v.local) } : {}),
        ...(v.link ? { dev: v.link } : {}),
      }
    }
  }
  return info
}

function linkinfo(kind: string, data?: (out: AttrStream) => void): Buffer {
  const s = new AttrStream()
  s.push(IFLA_INFO_KIND, Buffer.from(`${kind}\0`))
  if (data) s.push(IFLA_INFO_DATA, data)
  return Buffer.concat(s.bufs)
}

/** a u32 attribute's payload in host byte order (x86 and arm64 here: little-endian) */
function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

/** opens a namespace handle for IFLA_NET_NS_FD; the caller closes it */
function openNsFd(nsPath: string): number {
  assertNetnsPath(nsPath)
  return openSync(nsPath, fsConstants.O_RDONLY)
}

/**
 * One rtnetlink socket, in the current namespace or (through withNetns) in
 * another one. Every method is one request; dumps return plain objects.
 */
export class Netlink {
  private constructor(
    private readonly sock: RtNetlinkSocket,
    /** namespace this socket works in, undefined = the agent's own */
    readonly nsPath?: string,
  ) {
    const localPort = sock.socket.address().port
    this.plain = { timeout: REQUEST_TIMEOUT_MS, localPort }
    this.create = { ...this.plain, flags: FlagsNew.CREATE | FlagsNew.EXCL }
    this.replace = { ...this.plain, flags: FlagsNew.CREATE | FlagsNew.REPLACE }
  }

  /** socket-level errors (e.g. ENOBUFS when replies overflow the receive buffer); the requests they hit time out */
  socketErrors = 0
  lastSocketError?: Error

  static open(nsPath?: string): Netlink {
    const sock = nsPath === undefined ? createRtNetlink() : withNetns(nsPath, () => createRtNetlink())
    const nl = new Netlink(sock, nsPath)
    // Without a listener the package's 'error' event is thrown from its native callback and aborts the process.
    sock.socket.on('error', (err) => {
      nl.socketErrors++
      nl.lastSocketError = err
    })
    return nl
  }

  close(): void {
    this.sock.socket.close()
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw netlinkError(op, err)
    }
  }

  /**
   * The package reassembles one multipart reply at a time per socket, so dumps take turns. A reply it
   * finds torn (parts without their DONE: a few per start-up on a loaded machine) is a failed read, and a
   * dump only reads, so it is asked once more instead of failing the whole datapath pass.
   */
  private dumps: Promise<unknown> = Promise.resolve()
  private dump<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const once = () => this.call(op, fn)
    const next = this.dumps.then(() =>
      once().catch((err: unknown) => {
        if (!/Multipart message not terminated properly/.test(errorMessage(err))) throw err
        return once()
      }),
    )
    this.dumps = next.catch(() => undefined)
    return next
  }

  // Request options. localPort spares the package a getsockname per message (it shows in profiles).
  private readonly create: RtNetlinkSendOptions & RequestOptions
  private readonly replace: RtNetlinkSendOptions & RequestOptions
  private readonly plain: RtNetlinkSendOptions & RequestOptions

  // ---- links ----

  /**
   * Links, all of them or those `pick` keeps. A dump answers every link of
   * the namespace (a host's hundreds of container veths), and parsing each
   * whole held the main thread for tens of milliseconds; `where` sees each
   * link's index, name and kind, and only the links it keeps are parsed.
   * `kind` also asks the kernel to answer that kind alone (IFLA_LINKINFO in
   * the request), which it does only for a kind some module has registered.
   */
  async links(pick?: { kind?: string; where?: (l: LinkPick) => boolean }): Promise<LinkInfo[]> {
    const req = new AttrStream()
    rt.formatLinkMessage(
      { kind: 'link', data: {}, attrs: pick?.kind ? { linkinfo: linkinfo(pick.kind) } : {} },
      req,
    )
    const [msgs] = await this.dump('dump links', () =>
      this.sock.socket.request(rt.MessageType.GETLINK, req.bufs, { ...this.plain, flags: FlagsGet.DUMP }),
    )
    const keep = (l: LinkPick) => (!pick?.kind || l.kind === pick.kind) && (!pick?.where || pick.where(l))
    return msgs.flatMap((m) => {
      if (m.type !== rt.MessageType.NEWLINK || !keep(pickOf(m.data))) return []
      const parsed = rt.parseMessage(m.type, m.data)
      return parsed.kind === 'link' ? [linkFromMessage(parsed)] : []
    })
  }

  /** the link named name, or undefined */
  async getLink(name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.call(`get link ${name}`, () =>
        this.sock.getLink({}, { ifname: name }, this.plain),
      )
      return m ? linkFromMessage(m) : undefined
    } catch (err) {
      if (err instanceof PlexusError && err.code === 'PLX_NETLINK_NOT_FOUND') return undefined
      throw err
    }
  }

  /** the link named name; PLX_NETLINK_NOT_FOUND if there is none */
  async linkByName(name: string): Promise<LinkInfo> {
    const l = await this.getLink(name)
    if (!l) throw new PlexusError('PLX_NETLINK_NOT_FOUND', `link ${name} not found`, { op: 'get link', name })
    return l
  }

  async createBridge(name: string, opts: { mtu?: number; mac?: string } = {}): Promise<LinkInfo> {
    await this.call(`create bridge ${name}`, () =>
      this.sock.newLink({}, { ifname: name, linkinfo: linkinfo('bridge'), ...linkAttrs(opts) }, this.create),
    )
    return this.linkByName(name)
  }

  /**
   * Creates a veth pair; the peer is created directly in peer.nsPath (no
   * move afterwards, so it never appears in this namespace).
   */
  async createVeth(
    name: string,
    peer: { name: string; nsPath?: string; mac?: string },
    opts: { mtu?: number; mac?: string } = {},
  ): Promise<LinkInfo> {
    const fd = peer.nsPath === undefined ? undefined : openNsFd(peer.nsPath)
    try {
      const peerAttrs: ifla.LinkAttrs = {
        ifname: peer.name,
        ...linkAttrs({ mtu: opts.mtu, mac: peer.mac }),
        ...(fd === undefined ? {} : { netNsFd: fd }),
      }
      const info = linkinfo('veth', (out) =>
        out.push(VETH_INFO_PEER, [rt.formatLink({}), ...flatten(ifla.formatLinkAttrs(peerAttrs))]),
      )
      await this.call(`create veth ${name}/${peer.name}`, () =>
        this.sock.newLink({}, { ifname: name, linkinfo: info, ...linkAttrs(opts) }, this.create),
      )
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
    return this.linkByName(name)
  }

  async createVxlan(
    name: string,
    v: { vni: number; port: number; local?: string; dev?: number; learning?: boolean },
    opts: { mtu?: number; mac?: string } = {},
  ): Promise<LinkInfo> {
    const vx: ifla.Vxlan = {
      id: v.vni,
      port: Buffer.from([v.port >> 8, v.port & 255]),
      learning: v.learning ? 1 : 0,
      ...(v.local ? { local: ipToBuf(v.local) } : {}),
      ...(v.dev ? { link: v.dev } : {}),
    }
    const info = linkinfo('vxlan', (out) => out.emit(ifla.formatVxlan(vx)))
    await this.call(`create vxlan ${name}`, () =>
      this.sock.newLink({}, { ifname: name, linkinfo: info, ...linkAttrs(opts) }, this.create),
    )
    return this.linkByName(name)
  }

  /**
   * A macvlan sub-interface of the link `parent` (an index in this socket's
   * namespace), in bridge mode: sub-interfaces of one parent reach each other
   * inside the kernel, everything else leaves on the wire. Made directly in
   * opts.nsPath when given (the parent stays here), so it never appears in
   * this namespace.
   */
  async createMacvlan(
    name: string,
    parent: number,
    opts: { nsPath?: string; mtu?: number; mac?: string } = {},
  ): Promise<void> {
    const fd = opts.nsPath === undefined ? undefined : openNsFd(opts.nsPath)
    try {
      // IFLA_LINK is a u32 in host byte order
      const link = u32(parent)
      const info = linkinfo('macvlan', (out) => out.emit(ifla.formatMacvlan({ mode: MACVLAN_MODE_BRIDGE })))
      await this.call(`create macvlan ${name}`, () =>
        this.sock.newLink(
          {},
          {
            ifname: name,
            link,
            linkinfo: info,
            ...linkAttrs(opts),
            ...(fd === undefined ? {} : { netNsFd: fd }),
          },
          this.create,
        ),
      )
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }

  async setLink(index: number, change: LinkChange): Promise<void> {
    const attrs: ifla.LinkAttrs = {
      ...linkAttrs(change),
      ...(change.master !== undefined ? { master: change.master } : {}),
      ...(change.name !== undefined ? { ifname: change.name } : {}),
    }
    const data: rt.Link = { index }
    if (change.up !== undefined) {
      data.change = { up: true }
      data.flags = change.up ? { up: true } : {}
    }
    await this.call(`set link ${index}`, () => this.sock.setLink(data, attrs, this.plain))
  }

  async deleteLink(name: string): Promise<void> {
    await this.call(`delete link ${name}`, () => this.sock.delLink({}, { ifname: name }, this.plain))
  }

  // ---- addresses ----

  async addresses(ifindex?: number): Promise<AddressInfo[]> {
    const msgs = await this.dump('dump addresses', () =>
      this.sock.getAddresses({ family: AF_INET }, undefined, this.plain),
    )
    return msgs
      .filter((m) => m.data.family === AF_INET && (ifindex === undefined || m.data.index === ifindex))
      .flatMap((m) => {
        const a = m.attrs.local ?? m.attrs.address
        return a
          ? [{ ifindex: m.data.index ?? 0, address: bufToIp(a), prefixLen: m.data.prefixlen ?? 0 }]
          : []
      })
  }

  /** adds address/prefixLen to ifindex; PLX_NETLINK_EXISTS if it is there */
  async addAddress(ifindex: number, address: string, prefixLen: number): Promise<void> {
    const ip = ipToBuf(address)
    await this.call(`add address ${address}/${prefixLen}`, () =>
      this.sock.newAddress(
        { family: AF_INET, prefixlen: prefixLen, index: ifindex },
        { local: ip, address: ip },
        this.create,
      ),
    )
  }

  /**
   * Gives an address a lifetime (valid and preferred, whole seconds): the kernel deletes it, with its prefix
   * route, when the lifetime runs out unless it is set again (NLM_F_REPLACE updates an existing address in
   * place; the kernel adds it when it is missing).
   */
  async setAddressLifetime(
    ifindex: number,
    address: string,
    prefixLen: number,
    seconds: number,
  ): Promise<void> {
    const ip = ipToBuf(address)
    await this.call(`set lifetime of address ${address}/${prefixLen}`, () =>
      this.sock.newAddress(
        { family: AF_INET, prefixlen: prefixLen, index: ifindex },
        {
          local: ip,
          address: ip,
          cacheInfo: { ifaPrefered: seconds, ifaValid: seconds, cstamp: 0, tstamp: 0 },
        },
        { ...this.plain, flags: FlagsNew.REPLACE },
      ),
    )
  }

  async deleteAddress(ifindex: number, address: string, prefixLen: number): Promise<void> {
    const ip = ipToBuf(address)
    await this.call(`delete address ${address}/${prefixLen}`, () =>
      this.sock.delAddress(
        { family: AF_INET, prefixlen: prefixLen, index: ifindex },
        { local: ip },
        this.plain,
      ),
    )
  }

  // ---- routes (IPv4, main table) ----

  async routes(): Promise<RouteInfo[]> {
    const msgs = await this.dump('dump routes', () =>
      this.sock.getRoutes({ family: AF_INET }, undefined, this.plain),
    )
    return msgs.flatMap((m) => {
      const table = m.attrs.table ?? m.data.table ?? 0
      if (m.data.family !== AF_INET || table !== RT_TABLE_MAIN) return []
      const routeType = routeNumber(m.data.type, rt.RouteType as unknown as Record<string, number>)
      if (routeType !== rt.RouteType.UNICAST) return []
      const r: RouteInfo = {
        dst: `${m.attrs.dst ? bufToIp(m.attrs.dst) : '0.0.0.0'}/${m.data.dstLen ?? 0}`,
        onlink: ((m.data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
        protocol: routeNumber(m.data.protocol, rt.RouteProtocol as unknown as Record<string, number>),
        scope: routeNumber(m.data.scope, rt.RouteScope as unknown as Record<string, number>),
        table,
      }
      if (m.attrs.gateway) r.gateway = bufToIp(m.attrs.gateway)
      if (m.attrs.oif) r.oif = m.attrs.oif
      return [r]
    })
  }

  /**
   * The kernel's route lookup for one packet (RTM_GETROUTE, what `ip route get` asks): with iif,
   * as a packet arriving on that device (forwarding, rp_filter and policy routing count). The
   * kernel's refusal (unreachable, rp_filter) is a PLX_NETLINK_* error with its errno.
   */
  async lookupRoute(q: { dst: string; src?: string; iif?: number }): Promise<RouteLookup> {
    const [m] = await this.call(`route get ${q.dst}`, () =>
      this.sock.getRoute(
        { family: AF_INET, dstLen: 32, ...(q.src ? { srcLen: 32 } : {}) },
        { dst: ipToBuf(q.dst), ...(q.src ? { src: ipToBuf(q.src) } : {}), ...(q.iif ? { iif: q.iif } : {}) },
        this.plain,
      ),
    )
    if (!m) throw new PlexusError('PLX_NETLINK_FAILED', `route get ${q.dst}: no answer`)
    const type = routeNumber(m.data.type, rt.RouteType as unknown as Record<string, number>)
    return {
      type: (rt.RouteType[type] ?? String(type)).toLowerCase(),
      ...(m.attrs.oif ? { oif: m.attrs.oif } : {}),
      ...(m.attrs.gateway ? { gateway: bufToIp(m.attrs.gateway) } : {}),
      ...(m.attrs.prefsrc ? { prefsrc: bufToIp(m.attrs.prefsrc) } : {}),
    }
  }

  /** adds a route; PLX_NETLINK_EXISTS if one for the destination exists */
  async addRoute(spec: RouteSpec): Promise<void> {
    const [data, attrs] = routeMessage(spec)
    await this.call(`add route ${spec.dst}`, () => this.sock.newRoute(data, attrs, this.create))
  }

  /** adds or replaces the route for spec.dst */
  async replaceRoute(spec: RouteSpec): Promise<void> {
    const [data, attrs] = routeMessage(spec)
    await this.call(`replace route ${spec.dst}`, () => this.sock.newRoute(data, attrs, this.replace))
  }

  async deleteRoute(spec: Pick<RouteSpec, 'dst' | 'gateway' | 'oif'>): Promise<void> {
    const c = cidr(spec.dst)
    const attrs: rt.RouteAttrs = { dst: ipToBuf(formatIPv4(c.base)), table: RT_TABLE_MAIN }
    if (spec.gateway) attrs.gateway = ipToBuf(spec.gateway)
    if (spec.oif) attrs.oif = spec.oif
    await this.call(`delete route ${spec.dst}`, () =>
      this.sock.delRoute({ family: AF_INET, dstLen: c.prefix, table: RT_TABLE_MAIN }, attrs, this.plain),
    )
  }

  // ---- neighbours (ARP) ----

  /** IPv4 neighbours, of one link when ifindex is given (filtered by the kernel: NDA_IFINDEX) */
  async neighbours(ifindex?: number): Promise<NeighbourInfo[]> {
    const filter = ifindex === undefined ? undefined : { ifindex: u32(ifindex) }
    const msgs = await this.dump('dump neighbours', () =>
      this.sock.getNeighbors({ family: AF_INET }, filter, this.plain),
    )
    return msgs.flatMap((m) => {
      if (m.data.family !== AF_INET || !m.attrs.dst) return []
      if (ifindex !== undefined && m.data.ifindex !== ifindex) return []
      const n: NeighbourInfo = {
        ifindex: m.data.ifindex ?? 0,
        ip: bufToIp(m.attrs.dst),
        permanent: m.data.state?.permanent === true,
      }
      if (m.attrs.lladdr && m.attrs.lladdr.length === 6) n.mac = bufToMac(m.attrs.lladdr)
      return [n]
    })
  }

  /** adds or replaces a permanent ARP entry ip → mac on ifindex */
  async setNeighbour(ifindex: number, ip: string, mac: string): Promise<void> {
    await this.call(`set neighbour ${ip}`, () =>
      this.sock.newNeighbor(
        { family: AF_INET, ifindex, state: { permanent: true } },
        { dst: ipToBuf(ip), lladdr: macToBuf(mac) },
        this.replace,
      ),
    )
  }

  async deleteNeighbour(ifindex: number, ip: string): Promise<void> {
    await this.call(`delete neighbour ${ip}`, () =>
      this.sock.delNeighbor({ family: AF_INET, ifindex }, { dst: ipToBuf(ip) }, this.plain),
    )
  }

  // ---- forwarding database (bridge / VXLAN) ----

  /**
   * Forwarding database entries, of one device when ifindex is given. The
   * kernel filters an AF_BRIDGE dump by device only when the request carries
   * an ifinfomsg (16 bytes, the index where ndmsg has its own) rather than an
   * ndmsg, a form kept since Linux 4.12 for iproute2's `bridge fdb show dev`;
   * without it every bridge port's entries come back (three or more a veth).
   */
  async fdb(ifindex?: number): Promise<FdbInfo[]> {
    const msgs = await this.dump('dump fdb', async () => {
      if (ifindex === undefined) return this.sock.getNeighbors({ family: AF_BRIDGE }, undefined, this.plain)
      const req = Buffer.alloc(IFINFOMSG_LEN)
      req.writeUInt8(AF_BRIDGE, 0)
      req.writeInt32LE(ifindex, 4)
      const out = await this.sock.request(rt.MessageType.GETNEIGH, [req], {
        ...this.plain,
        flags: FlagsGet.DUMP,
      })
      return out.flatMap((m) => (m.kind === 'neighbor' ? [m] : []))
    })
    return msgs.flatMap((m) => {
      if (m.data.family !== AF_BRIDGE || !m.attrs.lladdr) return []
      if (ifindex !== undefined && m.data.ifindex !== ifindex) return []
      const f: FdbInfo = {
        ifindex: m.data.ifindex ?? 0,
        mac: bufToMac(m.attrs.lladdr),
        permanent: m.data.state?.permanent === true,
      }
      if (m.attrs.dst && m.attrs.dst.length === 4) f.dst = bufToIp(m.attrs.dst)
      return [f]
    })
  }

  /** adds or replaces a permanent FDB entry mac → remote VTEP dst on a VXLAN device */
  async setFdb(ifindex: number, mac: string, dst: string): Promise<void> {
    await this.call(`set fdb ${mac}`, () =>
      this.sock.newNeighbor(
        { family: AF_BRIDGE, ifindex, state: { permanent: true }, flags: { self: true } },
        { lladdr: macToBuf(mac), dst: ipToBuf(dst) },
        this.replace,
      ),
    )
  }

  async deleteFdb(ifindex: number, mac: string, dst?: string): Promise<void> {
    await this.call(`delete fdb ${mac}`, () =>
      this.sock.delNeighbor(
        { family: AF_BRIDGE, ifindex, flags: { self: true } },
        { lladdr: macToBuf(mac), ...(dst ? { dst: ipToBuf(dst) } : {}) },
        this.plain,
      ),
    )
  }
}

function linkAttrs(o: { mtu?: number; mac?: string }): ifla.LinkAttrs {
  return {
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    ...(o.mac !== undefined ? { address: macToBuf(o.mac) } : {}),
  }
}

function routeMessage(spec: RouteSpec): [rt.Route, rt.RouteAttrs] {
  const c = cidr(spec.dst)
  const data: rt.Route = {
    family: AF_INET,
    dstLen: c.prefix,
    table: RT_TABLE_MAIN,
    protocol: spec.protocol ?? RTPROT_PLEXUS,
    scope: spec.scope ?? (spec.gateway ? rt.RouteScope.UNIVERSE : rt.RouteScope.LINK),
    type: rt.RouteType.UNICAST,
  }
  if (spec.onlink) data.flags = { __unknown: RTNH_F_ONLINK }
  const attrs: rt.RouteAttrs = { dst: ipToBuf(formatIPv4(c.base)) }
  if (spec.gateway) attrs.gateway = ipToBuf(spec.gateway)
  if (spec.oif) attrs.oif = spec.oif
  return [data, attrs]
}

/** the package's StreamData (buffer, list or writer) as a list of buffers */
function flatten(d: ReturnType<typeof ifla.formatLinkAttrs>): Uint8Array[] {
  const s = new AttrStream()
  s.emit(d)
  return s.bufs
}
