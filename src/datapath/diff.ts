// Pure: desired state vs what the kernel holds → the batch of changes that
// converges it. Only what Plexus owns is ever removed: links named
// plexus0/plexus.<n>, routes stamped with our protocol, permanent neighbour
// and FDB entries on our links, and our own firewall chains/table.
import { expectedView, type FirewallView, sameView } from './firewall/model.js'
import type {
  DesiredFdb,
  DesiredLink,
  DesiredNeighbour,
  DesiredRoute,
  DesiredState,
  DesiredSwitch,
} from './model.js'

export interface ActualLink {
  name: string
  kind?: string
  mtu: number
  mac?: string
  up: boolean
  vxlan?: { vni: number; port: number; local?: string; dev?: string; learning: boolean }
  addresses: string[]
}

export interface ActualRoute extends DesiredRoute {
  /** installed by Plexus (our rtm_protocol) */
  ours: boolean
}

export interface ActualState {
  /** links Plexus owns (by name), as the kernel has them */
  links: ActualLink[]
  /** routes stamped as ours, plus any route for a destination we want */
  routes: ActualRoute[]
  /** permanent entries on links Plexus owns */
  neighbours: DesiredNeighbour[]
  fdb: DesiredFdb[]
  firewall: FirewallView
  forwarding: boolean
  /** the desired switches whose interface exists, as the kernel has them */
  switches?: DesiredSwitch[]
}

export type Change =
  | { kind: 'link-create'; link: DesiredLink }
  | { kind: 'link-delete'; name: string }
  | { kind: 'link-set'; name: string; mtu?: number; mac?: string; up?: true }
  | { kind: 'addr-add' | 'addr-del'; dev: string; address: string }
  | { kind: 'route-set'; route: DesiredRoute }
  | { kind: 'route-del'; route: DesiredRoute }
  | { kind: 'neigh-set' | 'neigh-del'; neighbour: DesiredNeighbour }
  | { kind: 'fdb-set' | 'fdb-del'; fdb: DesiredFdb }
  | { kind: 'firewall-apply' }
  | { kind: 'forwarding-on' }
  | { kind: 'switch-set'; switch: DesiredSwitch }

export const routeKey = (r: Pick<DesiredRoute, 'dst'>) => r.dst
export const neighKey = (n: DesiredNeighbour) => `${n.dev}|${n.ip}`
export const fdbKey = (f: DesiredFdb) => `${f.dev}|${f.mac}`
export const switchKey = (s: Pick<DesiredSwitch, 'kind' | 'dev'>) => `${s.kind} ${s.dev}`
const sameRoute = (a: DesiredRoute, b: DesiredRoute) =>
  a.gateway === b.gateway && a.dev === b.dev && a.onlink === b.onlink

/** whether an existing link can be kept (adjusted in place) or must be recreated */
function linkFits(want: DesiredLink, have: ActualLink): boolean {
  // wireguard-go's device is a tun; the kernel's would be of kind wireguard
  if (want.kind === 'wireguard') return have.kind === 'tun' || have.kind === 'wireguard'
  if (have.kind !== want.kind) return false
  if (!want.vxlan) return true
  const v = have.vxlan
  return (
    v !== undefined &&
    v.vni === want.vxlan.vni &&
    v.port === want.vxlan.port &&
    v.local === want.vxlan.local &&
    v.dev === want.vxlan.dev &&
    !v.learning
  )
}

function diffLinks(desired: DesiredLink[], actual: ActualLink[], out: Change[]): Set<string> {
  const recreated = new Set<string>()
  const want = new Map(desired.map((l) => [l.name, l]))
  for (const have of actual) {
    const w = want.get(have.name)
    if (!w || !linkFits(w, have)) {
      out.push({ kind: 'link-delete', name: have.name })
      recreated.add(have.name)
    }
  }
  const kept = new Map(actual.filter((l) => !recreated.has(l.name)).map((l) => [l.name, l]))
  for (const w of desired) {
    const have = kept.get(w.name)
    if (!have) {
      out.push({ kind: 'link-create', link: w })
      for (const address of w.addresses) out.push({ kind: 'addr-add', dev: w.name, address })
      continue
    }
    const set: Extract<Change, { kind: 'link-set' }> = { kind: 'link-set', name: w.name }
    if (have.mtu !== w.mtu) set.mtu = w.mtu
    if (w.mac && have.mac !== w.mac) set.mac = w.mac
    if (!have.up) set.up = true
    if (set.mtu !== undefined || set.mac || set.up) out.push(set)
    for (const address of w.addresses) {
      if (!have.addresses.includes(address)) out.push({ kind: 'addr-add', dev: w.name, address })
    }
    for (const address of have.addresses) {
      if (!w.addresses.includes(address)) out.push({ kind: 'addr-del', dev: w.name, address })
    }
  }
  return recreated
}

/**
 * Changes in the order they must be applied: links and addresses, then
 * removals, then FDB and neighbour entries before the routes that use them,
 * then the firewall.
 */
export function diffState(desired: DesiredState, actual: ActualState): Change[] {
  const out: Change[] = []
  const gone = diffLinks(desired.links, actual.links, out)
  // entries on a link that is being recreated vanish with it
  const alive = <T extends { dev: string }>(xs: T[]) => xs.filter((x) => !gone.has(x.dev))

  const haveRoutes = new Map<string, ActualRoute>()
  for (const r of alive(actual.routes)) if (!haveRoutes.has(routeKey(r))) haveRoutes.set(routeKey(r), r)
  const wantRoutes = new Map(desired.routes.map((r) => [routeKey(r), r]))
  for (const r of alive(actual.routes))
    if (r.ours && !wantRoutes.has(routeKey(r))) out.push({ kind: 'route-del', route: r })

  const haveNeigh = new Map(alive(actual.neighbours).map((n) => [neighKey(n), n]))
  const wantNeigh = new Map(desired.neighbours.map((n) => [neighKey(n), n]))
  for (const [k, n] of haveNeigh) if (!wantNeigh.has(k)) out.push({ kind: 'neigh-del', neighbour: n })

  const haveFdb = new Map(alive(actual.fdb).map((f) => [fdbKey(f), f]))
  const wantFdb = new Map(desired.fdb.map((f) => [fdbKey(f), f]))
  for (const [k, f] of haveFdb) if (!wantFdb.has(k)) out.push({ kind: 'fdb-del', fdb: f })

  for (const [k, f] of wantFdb) if (haveFdb.get(k)?.dst !== f.dst) out.push({ kind: 'fdb-set', fdb: f })
  for (const [k, n] of wantNeigh)
    if (haveNeigh.get(k)?.mac !== n.mac) out.push({ kind: 'neigh-set', neighbour: n })
  for (const [k, r] of wantRoutes) {
    const have = haveRoutes.get(k)
    if (!have?.ours || !sameRoute(have, r)) out.push({ kind: 'route-set', route: r })
  }

  if (!actual.forwarding) out.push({ kind: 'forwarding-on' })
  // a switch of an interface that is not there is left alone, unless this batch makes the interface
  const haveSwitch = new Map((actual.switches ?? []).map((s) => [switchKey(s), s.on]))
  const made = new Set(out.flatMap((c) => (c.kind === 'link-create' ? [c.link.name] : [])))
  for (const s of desired.switches ?? []) {
    const have = haveSwitch.get(switchKey(s))
    if (have === undefined ? made.has(s.dev) : have !== s.on) out.push({ kind: 'switch-set', switch: s })
  }
  if (!sameView(expectedView(desired.firewall), actual.firewall)) out.push({ kind: 'firewall-apply' })
  return out
}

const target = (kind: string, x: unknown) => `${kind} ${JSON.stringify(x)}`

/** stable identity of what a change (re)creates, to tell drift repairs from new work */
export function changeTarget(c: Change): string | undefined {
  switch (c.kind) {
    case 'route-set':
      return target('route', c.route)
    case 'neigh-set':
      return target('neigh', c.neighbour)
    case 'fdb-set':
      return target('fdb', c.fdb)
    case 'link-create':
      return target('link', c.link)
    case 'switch-set':
      return target('switch', c.switch)
    default:
      return undefined
  }
}

/** identities of everything desired, matching changeTarget */
export function desiredTargets(d: DesiredState): Set<string> {
  return new Set([
    ...d.routes.map((r) => target('route', r)),
    ...d.neighbours.map((n) => target('neigh', n)),
    ...d.fdb.map((f) => target('fdb', f)),
    ...d.links.map((l) => target('link', l)),
    ...(d.switches ?? []).map((s) => target('switch', s)),
  ])
}
