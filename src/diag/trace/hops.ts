// One host's part of a trace, read from its kernel: the kernel's own route
// lookup (RTM_GETROUTE over netlink, as `ip route get`, in the right namespace, with the input device,
// so rp_filter and policy routing count), links, neighbour and FDB entries
// (netlink), the firewall dumps, and listening sockets (sock_diag, src/lib/sock-diag.ts) in
// the destination namespace. Read-only.

import type { FirewallView } from '../../datapath/firewall/model.js'
import { BRIDGE_NAME } from '../../datapath/model.js'
import { type LinkInfo, Netlink } from '../../datapath/netlink.js'
import { withNetns } from '../../datapath/netns.js'
import { containsAddress, parseCidr, parseIPv4 } from '../../ipam/cidr.js'
import { errorMessage, PlexusError } from '../../lib/errors.js'
import {
  AF_INET,
  AF_INET6,
  ALL_STATES,
  addressText,
  type DiagSocket,
  dumpSockets,
  openSockDiag,
  TCP_LISTEN,
} from '../../lib/sock-diag.js'
import { endpointCodec } from '../../store/codecs.js'
import type { ReadableStore } from '../../store/types.js'
import { ENDPOINT_PREFIX, LEASE_PREFIX } from '../../store/types.js'
import { readFirewall } from '../doctor/facts.js'
import type { Flow, Hop, Published, TraceQuestion } from './model.js'
import { leaseFor, type TraceLease } from './places.js'
import { forwardVerdict } from './verdict.js'

/** this host, as the trace needs it (from its lease) */
export interface HostSide {
  name: string
  peerId: string
  store: ReadableStore
  /** absent without a lease */
  overlay?: {
    backend: string
    device: string
    underlay: string
    lease: string
    /** the cluster network and whether what leaves it is masqueraded (config/network IPMasq) */
    network: string
    ipMasq: boolean
  }
  /** Plexus' own firewall rules as the kernel has them (the datapath's reader), with packet counts */
  firewallView(): Promise<FirewallView>
}

/** the sockets in a namespace that take `port`: TCP listeners or bound UDP sockets, read with sock_diag */
async function listening(netns: string, proto: 'tcp' | 'udp', port: number): Promise<DiagSocket[]> {
  const queries = [AF_INET, AF_INET6].map((family) => ({
    family,
    protocol: proto,
    states: proto === 'tcp' ? 1 << TCP_LISTEN : ALL_STATES,
  }))
  const all = await dumpSockets(queries, () => withNetns(netns, openSockDiag))
  return all.filter((s) => s.sport === port)
}

interface RouteGot {
  dst: string
  dev?: string
  gateway?: string
  type?: string
  prefsrc?: string
}

/** the kernel's route lookup for one packet; an error (unreachable, rp_filter) is the answer too */
type Routed = { route?: RouteGot; error?: string }

interface Lookup {
  dst: string
  src?: string
  /** the device the packet arrives on (a forwarded packet), by name */
  iif?: string
}

/** the kernel's route lookup over netlink (RTM_GETROUTE, as `ip route get` asks it) */
async function routeGet(nl: Netlink, links: LinkInfo[], q: Lookup): Promise<Routed> {
  try {
    const iif = q.iif === undefined ? undefined : links.find((l) => l.name === q.iif)?.index
    if (q.iif !== undefined && iif === undefined) return { error: `no device ${q.iif}` }
    const r = await nl.lookupRoute({ dst: q.dst, ...(q.src ? { src: q.src } : {}), ...(iif ? { iif } : {}) })
    const dev = links.find((l) => l.index === r.oif)?.name
    return {
      route: {
        dst: q.dst,
        type: r.type,
        ...(dev ? { dev } : {}),
        ...(r.gateway ? { gateway: r.gateway } : {}),
        ...(r.prefsrc ? { prefsrc: r.prefsrc } : {}),
      },
    }
  } catch (err) {
    return { error: errorMessage(err) }
  }
}

/** runs fn with a netlink socket made inside a container's namespace */
async function inContainer<T>(netns: string, fn: (nl: Netlink, links: LinkInfo[]) => Promise<T>): Promise<T> {
  const nl = Netlink.open(netns)
  try {
    return await fn(nl, await nl.links())
  } finally {
    nl.close()
  }
}

const showRoute = (r: RouteGot) =>
  `${r.type && r.type !== 'unicast' ? `${r.type} ` : ''}${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`

interface Endpoint {
  key: string
  netns: string
  hostVeth: string
  ipv4: string
}

export function endpointOf(
  h: Pick<HostSide, 'name' | 'peerId' | 'store'>,
  key: string | undefined,
): Endpoint | undefined {
  if (!key) return undefined
  if (!key.startsWith(`${ENDPOINT_PREFIX}${h.peerId}/`))
    throw new PlexusError('PLX_INSPECT_BAD_QUESTION', `${key} is not an endpoint of ${h.name}`)
  const rec = h.store.get(key)
  const v = rec && endpointCodec.valueOf(rec)
  if (!v?.netns || !v.hostVeth)
    throw new PlexusError('PLX_TRACE_UNKNOWN', `no endpoint record ${key} on ${h.name}`)
  return { key, netns: v.netns, hostVeth: v.hostVeth, ipv4: v.ipv4 }
}

function vethHop(h: HostSide, ep: Endpoint, links: LinkInfo[], dir: 'to' | 'from'): Hop {
  const base = { host: h.name, component: 'veth', record: ep.key }
  const veth = links.find((l) => l.name === ep.hostVeth)
  const bridge = links.find((l) => l.name === BRIDGE_NAME)
  if (!veth)
    return {
      ...base,
      action: 'dropped',
      object: `link ${ep.hostVeth}`,
      cause: `host veth ${ep.hostVeth} does not exist`,
      fix: 'the container lost its interface: re-attach it (CNI DEL + ADD, or restart it)',
    }
  if (!veth.up)
    return {
      ...base,
      action: 'dropped',
      object: `link ${ep.hostVeth} down`,
      cause: `${ep.hostVeth} is down`,
      fix: `ip link set ${ep.hostVeth} up`,
    }
  if (!bridge || veth.master !== bridge.index)
    return {
      ...base,
      action: 'dropped',
      object: `link ${ep.hostVeth} (no master ${BRIDGE_NAME})`,
      cause: `${ep.hostVeth} is not a port of ${BRIDGE_NAME}`,
      fix: `ip link set ${ep.hostVeth} master ${BRIDGE_NAME}`,
    }
  return {
    ...base,
    action: 'forwarded',
    object: `${ep.hostVeth} ${dir === 'from' ? '→' : '←'} ${BRIDGE_NAME} (up, mtu ${veth.mtu})`,
  }
}

/** the overlay part after the host's route picked a device other than the bridge */
async function encapHops(
  h: HostSide,
  nl: Netlink,
  links: LinkInfo[],
  route: RouteGot,
  /** the lease of the host the flow goes to */
  remote: TraceLease,
  /** the underlay route to the remote's address in its lease, looked up ahead */
  ahead?: Routed,
): Promise<Hop[]> {
  const record = remote.key
  const publicIp = remote.value.publicIp
  const base = { host: h.name, record }
  const dev = links.find((l) => l.name === route.dev)
  // host-gw (or wireguard): the host route, checked against the lease already, names the next hop
  if (dev?.kind !== 'vxlan')
    return [
      {
        ...base,
        component: 'underlay',
        action: 'forwarded',
        object: `${showRoute(route)} (mtu ${dev?.mtu ?? '?'})`,
      },
    ]
  const hops: Hop[] = []
  const neigh = (await nl.neighbours(dev.index)).find((n) => n.ip === route.gateway)
  if (!neigh?.mac)
    return [
      {
        ...base,
        component: 'vxlan-neighbour',
        action: 'dropped',
        object: `no neighbour ${route.gateway} on ${dev.name}`,
        cause: `the neighbour entry for ${route.gateway} (the remote VTEP) is missing on ${h.name}`,
        fix: 'the datapath repairs it within one pass (datapath.reconcileIntervalMs); if it comes back missing, see `plexctl routes`',
      },
    ]
  hops.push({
    ...base,
    component: 'vxlan-neighbour',
    action: 'forwarded',
    object: `neigh ${route.gateway} lladdr ${neigh.mac} dev ${dev.name}${neigh.permanent ? ' PERMANENT' : ''}`,
  })
  const fdb = (await nl.fdb(dev.index)).find((f) => f.mac === neigh.mac && f.dst)
  if (!fdb?.dst)
    return [
      ...hops,
      {
        ...base,
        component: 'vxlan-fdb',
        action: 'dropped',
        object: `no fdb ${neigh.mac} on ${dev.name}`,
        cause: `FDB entry for ${neigh.mac} (host ${publicIp}) missing on ${h.name}`,
        fix: 'the datapath repairs it within one pass (datapath.reconcileIntervalMs); if it comes back missing, see `plexctl routes`',
      },
    ]
  if (fdb.dst !== publicIp)
    return [
      ...hops,
      {
        ...base,
        component: 'vxlan-fdb',
        action: 'dropped',
        object: `fdb ${fdb.mac} dst ${fdb.dst} dev ${dev.name}`,
        cause: `the FDB sends to ${fdb.dst}, the lease says ${publicIp}`,
        fix: 'the datapath replaces it within one pass; see `plexctl routes`',
      },
    ]
  hops.push({
    ...base,
    component: 'vxlan-fdb',
    action: 'forwarded',
    object: `fdb ${fdb.mac} dst ${fdb.dst} dev ${dev.name}`,
  })
  const under = ahead && fdb.dst === publicIp ? ahead : await routeGet(nl, links, { dst: fdb.dst })
  if (!under.route)
    return [
      ...hops,
      {
        ...base,
        component: 'underlay',
        action: 'dropped',
        object: `route get ${fdb.dst}`,
        cause: `no underlay route to ${fdb.dst}: ${under.error}`,
        fix: 'check the underlay interface and its routes',
      },
    ]
  const ul = links.find((l) => l.name === under.route?.dev)
  const mtuShort = ul && ul.mtu < dev.mtu + 50
  hops.push({
    ...base,
    component: 'underlay',
    action: mtuShort ? 'dropped' : 'forwarded',
    object: `${showRoute(under.route)} (mtu ${ul?.mtu ?? '?'}), VXLAN to UDP ${dev.vxlan?.port ?? '?'}`,
    ...(mtuShort
      ? {
          cause: `underlay MTU ${ul?.mtu} < ${dev.name} MTU ${dev.mtu} + 50: full-size packets are lost`,
          fix: `raise ${ul?.name} MTU to ${dev.mtu + 50}`,
        }
      : {}),
  })
  return hops
}

/** what both parts of a trace read from: this host, the question, its netlink socket, links and firewall dumps */
interface Reading {
  h: HostSide
  q: TraceQuestion
  nl: Netlink
  links: LinkInfo[]
  fw: Parameters<typeof forwardVerdict>[2]
}
const NOT_ASKED = Promise.resolve(undefined)
const stops = (r: Routed) => !r.route || ['unreachable', 'blackhole', 'prohibit'].includes(r.route.type ?? '')

async function srcHops({ h, q, nl, links, fw }: Reading): Promise<Hop[]> {
  const { flow } = q
  const ep = endpointOf(h, q.endpointKey)
  // only the leases: which host holds the destination's subnet
  const remote = leaseFor({ leases: h.store.list(LEASE_PREFIX) }, flow.dst)
  const remoteIp = q.local ? undefined : remote?.value.publicIp
  // every lookup at once: under load each spawn of ip costs 100-300 ms
  const [inCtr, route, underlay] = await Promise.all([
    ep
      ? inContainer(ep.netns, (cnl, clinks) => routeGet(cnl, clinks, { dst: flow.dst, src: flow.src })).catch(
          (err: unknown): Routed => ({ error: errorMessage(err) }),
        )
      : NOT_ASKED,
    routeGet(nl, links, { dst: flow.dst, src: flow.src, ...(ep ? { iif: BRIDGE_NAME } : {}) }),
    typeof remoteIp === 'string' ? routeGet(nl, links, { dst: remoteIp }) : NOT_ASKED,
  ])
  const hops: Hop[] = []
  if (ep && inCtr) {
    const base = { host: h.name, component: 'container-route', record: ep.key }
    if (!inCtr.route)
      return [
        {
          ...base,
          action: 'dropped',
          object: `route get ${flow.dst} in ${ep.netns}`,
          cause: `no route in the source container: ${inCtr.error}`,
          fix: 're-attach the container (its default route via the bridge is missing)',
        },
      ]
    hops.push({ ...base, action: 'forwarded', object: showRoute(inCtr.route) })
    const veth = vethHop(h, ep, links, 'from')
    hops.push(veth)
    if (veth.action === 'dropped') return hops
  }
  if (!route.route || stops(route))
    return [
      ...hops,
      {
        host: h.name,
        component: 'host-route',
        action: 'dropped',
        object: route.route ? showRoute(route.route) : `route get ${flow.dst}`,
        cause: `the kernel has no route for ${flow.dst}: ${route.error ?? route.route?.type}`,
        fix: 'the datapath programs a route per remote lease: see `plexctl routes` (refused or missing remote)',
      },
    ]
  const local = route.route.dev === BRIDGE_NAME
  const record = local ? h.overlay?.lease : remote?.key
  const astray =
    !local && remote && h.overlay ? offOverlay(h.overlay, route.route, remote.value.publicIp) : undefined
  if (astray)
    return [
      ...hops,
      {
        host: h.name,
        component: 'host-route',
        action: 'dropped',
        object: showRoute(route.route),
        ...(record ? { record } : {}),
        cause: `the route to ${remote?.value.subnet} (${record}) is missing on ${h.name}: the kernel sends ${flow.dst} ${astray}`,
        fix: 'the datapath programs it again within one pass (datapath.reconcileIntervalMs); if it comes back missing, see `plexctl routes`',
      },
    ]
  hops.push({
    host: h.name,
    component: 'host-route',
    action: 'forwarded',
    object: showRoute(route.route),
    ...(record ? { record } : {}),
  })
  // an address of this host (its underlay address, a published port here): the destination's part goes on
  if (route.route.type === 'local') return hops
  if (ep) {
    const verdict = forwardVerdict(h.name, flow, fw)
    hops.push(verdict)
    if (verdict.action === 'dropped') return hops
  }
  if (local) return hops
  if (ep && leaving(h, flow.dst)) hops.push(await masqueradeHop(h, route.route))
  // an address outside every lease (another host's underlay address): the host route was the last decision here
  if (!remote) return hops
  return [...hops, ...(await encapHops(h, nl, links, route.route, remote, underlay))]
}

/** how a route to another host's subnet misses the backend's way there (host-gw: via its underlay address; else the overlay device), if it does */
function offOverlay(o: NonNullable<HostSide['overlay']>, r: RouteGot, publicIp: string): string | undefined {
  if (o.backend === 'host-gw')
    return r.gateway === publicIp
      ? undefined
      : `${r.gateway ? `via ${r.gateway}` : `on ${r.dev}`}, not via ${publicIp}`
  return r.dev === o.device ? undefined : `out of ${r.dev ?? '?'}, not ${o.device}`
}

/** the flow leaves the cluster network (to a host's underlay address): the cluster section masquerades it */
function leaving(h: HostSide, dst: string): boolean {
  const net = h.overlay ? parseCidr(h.overlay.network) : undefined
  const ip = parseIPv4(dst)
  return !!h.overlay?.ipMasq && !!net && 'cidr' in net && ip !== undefined && !containsAddress(net.cidr, ip)
}

/** the cluster section's masquerade rule for what leaves the cluster network, read from the kernel */
async function masqueradeHop(h: HostSide, route: RouteGot): Promise<Hop> {
  const view = await h.firewallView()
  const tag = view.rules.postrouting.find((t) => t.startsWith('plexus:cluster/nat-leaving#'))
  const base = { host: h.name, component: 'masquerade', record: 'config/network' }
  if (!tag)
    return {
      ...base,
      action: 'dropped',
      object: 'no rule plexus:cluster/nat-leaving in postrouting',
      cause: `the masquerade rule is missing on ${h.name}: the far side cannot answer the container's address`,
      fix: 'the datapath restores its firewall within one pass; see plexctl status on this host',
    }
  const n = view.packets?.[tag]
  return {
    ...base,
    action: 'nat',
    object: `MASQUERADE to ${route.prefsrc ?? `the address of ${route.dev}`} (${tag}${n === undefined ? '' : `, ${n} packets`})`,
  }
}

async function dstHops(r: Reading): Promise<Hop[]> {
  const { h, q } = r
  if (!q.publish) return dstPath(r, q.flow, q.local ? undefined : h.overlay?.device)
  const nat = await dnatHop(h, q.flow, q.publish, q.endpointKey)
  if (nat.action === 'dropped') return [nat]
  const p = q.publish
  // from another host the packet arrives on the underlay; from a container here, on the bridge
  const iif = q.local ? BRIDGE_NAME : h.overlay?.underlay
  return [
    nat,
    ...(await dstPath(r, { ...q.flow, src: p.arrivingSrc, dst: p.containerIp, port: p.containerPort }, iif)),
  ]
}

/** the published port's DNAT rule in prerouting (src/ports/publish.ts makes it), read from the kernel */
async function dnatHop(h: HostSide, flow: Flow, p: Published, record: string | undefined): Promise<Hop> {
  const view = await h.firewallView()
  const prefix = `plexus:ports/${flow.proto}-${flow.port}-`
  const tag = view.rules.prerouting.find((t) => t.startsWith(prefix) && t.includes('-pre#'))
  const base = { host: h.name, component: 'published-port', ...(record ? { record } : {}) }
  if (!tag)
    return {
      ...base,
      action: 'dropped',
      object: `no DNAT rule for ${flow.proto}/${flow.port} in prerouting`,
      cause: `the published port ${flow.proto}/${flow.port} has no DNAT rule on ${h.name}`,
      fix: 'the datapath restores it within one pass (datapath.reconcileIntervalMs); see plexctl port ls',
    }
  const n = view.packets?.[tag]
  return {
    ...base,
    action: 'nat',
    object: `DNAT ${flow.dst}:${flow.port}/${flow.proto} → ${p.containerIp}:${p.containerPort} (${tag}${n === undefined ? '' : `, ${n} packets`})`,
  }
}

/** the destination host's part: in on `iif` (absent: both ends here), to the container, its socket */
async function dstPath(
  { h, q, nl, links, fw }: Reading,
  flow: Flow,
  iif: string | undefined,
): Promise<Hop[]> {
  const ep = endpointOf(h, q.endpointKey)
  const withPort = flow.port !== undefined && flow.proto !== 'icmp'
  const [arriving, addrs, socks, mine] = await Promise.all([
    iif ? routeGet(nl, links, { dst: flow.dst, src: flow.src, iif }) : NOT_ASKED,
    ep
      ? inContainer(ep.netns, (cnl) => cnl.addresses()).then(
          (list) => ({ list }),
          (err: unknown) => ({ err }),
        )
      : NOT_ASKED,
    ep && withPort
      ? listening(ep.netns, flow.proto as 'tcp' | 'udp', flow.port as number).catch(() => [])
      : Promise.resolve([]),
    ep ? NOT_ASKED : routeGet(nl, links, { dst: flow.dst }),
  ])
  const lease = h.overlay?.lease
  const hops: Hop[] = []
  if (arriving && iif) {
    const base = { host: h.name, component: 'host-route', ...(lease ? { record: lease } : {}) }
    if (!ep && arriving.route?.type === 'local')
      return [{ ...base, component: 'host', action: 'delivered', object: `local ${flow.dst} (in on ${iif})` }]
    if (!arriving.route || arriving.route.dev !== BRIDGE_NAME)
      return [
        {
          ...base,
          action: 'dropped',
          object: arriving.route ? showRoute(arriving.route) : `route get ${flow.dst} iif ${iif}`,
          cause: `arriving on ${iif}, ${flow.dst} is not routed to ${BRIDGE_NAME}: ${arriving.error ?? showRoute(arriving.route as RouteGot)}`,
          fix: 'check net.ipv4.ip_forward, rp_filter and the bridge address (plexctl doctor)',
        },
      ]
    hops.push({ ...base, action: 'forwarded', object: `${showRoute(arriving.route)} (in on ${iif})` })
    if (ep) {
      const verdict = forwardVerdict(h.name, flow, fw)
      hops.push(verdict)
      if (verdict.action === 'dropped') return hops
    }
  }
  if (!ep) {
    // an address of this host's subnet that no endpoint record holds (the gateway is local)
    return mine?.route?.type === 'local'
      ? [...hops, { host: h.name, component: 'host', action: 'delivered', object: `local ${flow.dst}` }]
      : [
          ...hops,
          {
            host: h.name,
            component: 'container',
            action: 'dropped',
            object: `no endpoint holds ${flow.dst}`,
            cause: `no container on ${h.name} has ${flow.dst}`,
            fix: 'check the address: plexctl endpoints',
          },
        ]
  }
  const veth = vethHop(h, ep, links, 'to')
  hops.push(veth)
  if (veth.action === 'dropped') return hops
  const base = { host: h.name, component: 'container', record: ep.key }
  if (!addrs || 'err' in addrs)
    return [
      ...hops,
      {
        ...base,
        action: 'dropped',
        object: ep.netns,
        cause: `cannot read the destination namespace: ${errorMessage(addrs?.err)}`,
        fix: 'the container is gone: remove it (CNI DEL) or restart it',
      },
    ]
  const has = addrs.list.some((a) => a.address === flow.dst)
  if (!has)
    return [
      ...hops,
      {
        ...base,
        action: 'dropped',
        object: `no address ${flow.dst} in ${ep.netns}`,
        cause: `the destination namespace does not hold ${flow.dst}`,
        fix: 're-attach the container',
      },
    ]
  if (!withPort) return [...hops, { ...base, action: 'delivered', object: `${flow.dst} in ${ep.netns}` }]
  hops.push({ ...base, action: 'forwarded', object: `${flow.dst} in ${ep.netns}` })
  const sock = socks[0]
  if (!sock)
    return [
      ...hops,
      {
        host: h.name,
        component: 'socket',
        action: 'dropped',
        object: `no ${flow.proto} socket on :${flow.port}`,
        cause: `nothing listens on ${flow.proto}/${flow.port} in the destination container`,
        fix: 'start the service, or check the port it binds',
      },
    ]
  return [
    ...hops,
    {
      host: h.name,
      component: 'socket',
      action: 'delivered',
      object: `${flow.proto} ${addressText(sock.src)}:${sock.sport} (${flow.proto === 'tcp' ? 'listening' : 'bound'})`,
    },
  ]
}

export async function traceHere(h: HostSide, q: TraceQuestion): Promise<Hop[]> {
  const nl = Netlink.open()
  try {
    const [links, fw] = await Promise.all([nl.links(), readFirewall()])
    const r: Reading = { h, q, nl, links, fw }
    return q.role === 'src' ? await srcHops(r) : await dstHops(r)
  } finally {
    nl.close()
  }
}
