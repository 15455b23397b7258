// The effectful edge of the reconciler: read the kernel's state into the
// plain shape diff.ts compares, and apply a batch of changes over netlink
// (plus one firewall batch and the forwarding sysctl).
import { readFileSync, writeFileSync } from 'node:fs'
import { mask, parseIPv4 } from '../ipam/cidr.js'
import { isPlexusError } from '../lib/errors.js'
import type { ActualLink, ActualState, Change } from './diff.js'
import type { FirewallBackend } from './firewall/index.js'
import type { FirewallView } from './firewall/model.js'
import { type DesiredState, type DesiredSwitch, OWNED_LINK, type Underlay } from './model.js'
import { type LinkInfo, type Netlink, type RouteInfo, RTPROT_PLEXUS } from './netlink.js'
import { withNetns } from './netns.js'

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward'
/**
 * netlink requests in flight at once while applying a batch. Bounded by the
 * socket's receive buffer (rmem_max, 208 KiB by default): every request's
 * ACK must fit, and the netlink package aborts the process on ENOBUFS (seen
 * at 1,024 in flight). 64 is as fast as 256 here (program_1000 in bench/overlay).
 */
const CONCURRENCY = 64

/** /proc/sys/net is per namespace: read and write it in the socket's namespace */
function inNs<T>(nl: Netlink, fn: () => T): T {
  return nl.nsPath === undefined ? fn() : withNetns(nl.nsPath, fn)
}

/**
 * Where a switch lives. route_localnet and nf_conntrack_acct are per namespace under /proc/sys (read
 * in the socket's namespace); hairpin mode through /sys, which shows the
 * agent's namespace (the fixture's `ip netns exec` mounts it so; on a real
 * host it is the root namespace).
 */
function switchFile(s: Pick<DesiredSwitch, 'kind' | 'dev'>): string {
  switch (s.kind) {
    case 'route-localnet':
      return `/proc/sys/net/ipv4/conf/${s.dev}/route_localnet`
    case 'conntrack-acct':
      return '/proc/sys/net/netfilter/nf_conntrack_acct'
    case 'hairpin':
      return `/sys/class/net/${s.dev}/brport/hairpin_mode`
  }
}

/** under /proc/sys: the socket's namespace's own (hairpin, under /sys, is the agent's view) */
const perNamespace = (s: Pick<DesiredSwitch, 'kind'>) => s.kind !== 'hairpin'

/** the switches' current values; one whose interface (or bridge port) is not there is left out */
function readSwitches(nl: Netlink, wanted: DesiredSwitch[]): DesiredSwitch[] {
  return wanted.flatMap((s) => {
    try {
      const read = () => readFileSync(switchFile(s), 'utf8').trim()
      return [{ ...s, on: (perNamespace(s) ? inNs(nl, read) : read()) !== '0' }]
    } catch {
      return []
    }
  })
}

/** the underlay interface as the kernel has it: index, MTU and the networks directly connected on it */
export async function readUnderlay(nl: Netlink, ifname: string, address: string): Promise<Underlay> {
  const link = await nl.linkByName(ifname)
  const prefixes = (await nl.addresses(link.index)).map((a) => ({
    base: ((parseIPv4(a.address) as number) & mask(a.prefixLen)) >>> 0,
    prefix: a.prefixLen,
  }))
  return { ifname, ifindex: link.index, address, mtu: link.mtu, prefixes }
}

export interface KernelView {
  actual: ActualState
  /** ifindex of every link by name */
  index: Map<string, number>
}

/**
 * The links a pass compares or names: ours (by name, whatever their kind, so a
 * stale one is found), every other link the desired state names (the underlay
 * a VTEP or a route uses) and the devices of the routes it compares. One dump,
 * of which only these are parsed.
 */
function linksOfInterest(nl: Netlink, desired: DesiredState, routes: RouteInfo[]): Promise<LinkInfo[]> {
  const named = new Set([
    ...desired.links.flatMap((l) => (l.vxlan ? [l.vxlan.dev] : [])),
    ...desired.routes.map((r) => r.dev),
  ])
  const oifs = new Set(routes.map((r) => r.oif))
  return nl.links({ where: (l) => OWNED_LINK.test(l.name) || named.has(l.name) || oifs.has(l.index) })
}

/** our routes, and any route to a destination the desired state wants */
async function routesOfInterest(nl: Netlink, desired: DesiredState): Promise<RouteInfo[]> {
  const wanted = new Set(desired.routes.map((r) => r.dst))
  return (await nl.routes()).filter((r) => r.protocol === RTPROT_PLEXUS || wanted.has(r.dst))
}

/**
 * Dumps what the datapath compares. The firewall's part comes from the
 * caller: read back (full passes), or assumed (see Reconciler.pass), since
 * reading it costs two process spawns.
 */
export async function readActual(
  nl: Netlink,
  desired: DesiredState,
  firewall: () => FirewallView | Promise<FirewallView>,
): Promise<KernelView> {
  const [[routes, links], addrs, neighbours, view] = await Promise.all([
    routesOfInterest(nl, desired).then(async (r) => [r, await linksOfInterest(nl, desired, r)] as const),
    nl.addresses(),
    nl.neighbours(),
    firewall(),
  ])
  const owned = new Map(links.filter((l) => OWNED_LINK.test(l.name)).map((l) => [l.index, l]))
  // only a VXLAN device's entries have a remote (dst): the bridges' are their ports' own
  const fdb = (
    await Promise.all([...owned.values()].filter((l) => l.kind === 'vxlan').map((l) => nl.fdb(l.index)))
  ).flat()
  const name = new Map(links.map((l) => [l.index, l.name]))
  const toActual = (l: LinkInfo): ActualLink => ({
    name: l.name,
    ...(l.kind ? { kind: l.kind } : {}),
    mtu: l.mtu,
    ...(l.mac ? { mac: l.mac } : {}),
    up: l.up,
    ...(l.vxlan
      ? {
          vxlan: {
            vni: l.vxlan.vni,
            port: l.vxlan.port,
            learning: l.vxlan.learning,
            ...(l.vxlan.local ? { local: l.vxlan.local } : {}),
            ...(l.vxlan.dev ? { dev: name.get(l.vxlan.dev) ?? `#${l.vxlan.dev}` } : {}),
          },
        }
      : {}),
    addresses: addrs.filter((a) => a.ifindex === l.index).map((a) => `${a.address}/${a.prefixLen}`),
  })
  const forwarding = inNs(nl, () => readFileSync(IP_FORWARD, 'utf8').trim() === '1')
  const switches = readSwitches(nl, desired.switches ?? [])
  return {
    index: new Map(links.map((l) => [l.name, l.index])),
    actual: {
      links: [...owned.values()].map(toActual),
      routes: routes.map((r) => ({
        dst: r.dst,
        gateway: r.gateway ?? '',
        dev: (r.oif && name.get(r.oif)) || '',
        onlink: r.onlink,
        ours: r.protocol === RTPROT_PLEXUS,
      })),
      neighbours: neighbours.flatMap((n) =>
        n.permanent && n.mac && owned.has(n.ifindex)
          ? [{ dev: name.get(n.ifindex) as string, ip: n.ip, mac: n.mac }]
          : [],
      ),
      fdb: fdb.flatMap((f) =>
        f.permanent && f.dst && owned.has(f.ifindex)
          ? [{ dev: name.get(f.ifindex) as string, mac: f.mac, dst: f.dst }]
          : [],
      ),
      firewall: view,
      forwarding,
      ...(switches.length ? { switches } : {}),
    },
  }
}

export interface ApplyResult {
  applied: number
  failed: { change: Change; error: string; code?: string }[]
}

function ifindex(index: Map<string, number>, name: string): number {
  const i = index.get(name)
  if (i === undefined) throw new Error(`link ${name} does not exist`)
  return i
}

async function applyOne(
  nl: Netlink,
  c: Change,
  index: Map<string, number>,
  desired: DesiredState,
  firewall: FirewallBackend,
): Promise<void> {
  switch (c.kind) {
    case 'link-delete':
      await nl.deleteLink(c.name)
      index.delete(c.name)
      return
    case 'link-create': {
      const { link } = c
      if (link.kind === 'wireguard')
        throw new Error(`${link.name} is started by the WireGuard driver at the start of the next pass`)
      const opts = { mtu: link.mtu, ...(link.mac ? { mac: link.mac } : {}) }
      const made = link.vxlan
        ? await nl.createVxlan(link.name, { ...link.vxlan, dev: ifindex(index, link.vxlan.dev) }, opts)
        : await nl.createBridge(link.name, opts)
      index.set(link.name, made.index)
      await nl.setLink(made.index, { up: true })
      return
    }
    case 'link-set':
      await nl.setLink(ifindex(index, c.name), {
        ...(c.mtu !== undefined ? { mtu: c.mtu } : {}),
        ...(c.mac ? { mac: c.mac } : {}),
        ...(c.up ? { up: true } : {}),
      })
      return
    case 'addr-add':
    case 'addr-del': {
      const [ip, len] = c.address.split('/') as [string, string]
      if (c.kind === 'addr-add') await nl.addAddress(ifindex(index, c.dev), ip, Number(len))
      else await nl.deleteAddress(ifindex(index, c.dev), ip, Number(len))
      return
    }
    case 'route-set':
      await nl.replaceRoute({
        dst: c.route.dst,
        gateway: c.route.gateway,
        oif: ifindex(index, c.route.dev),
        onlink: c.route.onlink,
      })
      return
    case 'route-del':
      await nl.deleteRoute({ dst: c.route.dst, ...(c.route.gateway ? { gateway: c.route.gateway } : {}) })
      return
    case 'neigh-set':
      await nl.setNeighbour(ifindex(index, c.neighbour.dev), c.neighbour.ip, c.neighbour.mac)
      return
    case 'neigh-del':
      await nl.deleteNeighbour(ifindex(index, c.neighbour.dev), c.neighbour.ip)
      return
    case 'fdb-set':
      await nl.setFdb(ifindex(index, c.fdb.dev), c.fdb.mac, c.fdb.dst)
      return
    case 'fdb-del':
      await nl.deleteFdb(ifindex(index, c.fdb.dev), c.fdb.mac, c.fdb.dst)
      return
    case 'forwarding-on':
      inNs(nl, () => writeFileSync(IP_FORWARD, '1'))
      return
    case 'switch-set': {
      const write = () => writeFileSync(switchFile(c.switch), c.switch.on ? '1' : '0')
      if (perNamespace(c.switch)) inNs(nl, write)
      else write()
      return
    }
    case 'firewall-apply':
      await firewall.apply(desired.firewall)
      return
  }
}

const STAGES: Change['kind'][][] = [
  ['link-delete'],
  ['link-create'],
  ['link-set'],
  ['addr-del', 'addr-add'],
  ['route-del', 'neigh-del', 'fdb-del'],
  ['fdb-set', 'neigh-set'],
  ['route-set'],
  ['forwarding-on', 'firewall-apply', 'switch-set'],
]

/**
 * Applies a diffState batch stage by stage; within a stage, requests run
 * concurrently. A failed change is reported and the rest go on (the next
 * pass retries it); removing something already gone counts as done.
 */
export async function applyChanges(
  nl: Netlink,
  changes: Change[],
  index: Map<string, number>,
  desired: DesiredState,
  firewall: FirewallBackend,
): Promise<ApplyResult> {
  const result: ApplyResult = { applied: 0, failed: [] }
  for (const kinds of STAGES) {
    const batch = changes.filter((c) => kinds.includes(c.kind))
    // links are created one by one: a VTEP needs the index of its underlay
    const width = kinds.includes('link-create') || kinds.includes('link-delete') ? 1 : CONCURRENCY
    for (let i = 0; i < batch.length; i += width) {
      await Promise.all(
        batch.slice(i, i + width).map(async (c) => {
          try {
            await applyOne(nl, c, index, desired, firewall)
            result.applied++
          } catch (err) {
            const removing = c.kind.endsWith('-del') || c.kind === 'link-delete'
            if (removing && isPlexusError(err, 'PLX_NETLINK_NOT_FOUND')) {
              result.applied++
              return
            }
            result.failed.push({
              change: c,
              error: err instanceof Error ? err.message : String(err),
              ...(isPlexusError(err) ? { code: err.code } : {}),
            })
          }
        }),
      )
    }
  }
  return result
}
