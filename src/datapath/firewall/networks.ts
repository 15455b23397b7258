// Pure: the `networks` firewall section (issue 17 item 2). Every bridge
// network is an overlay of its own beside the cluster network; what one
// network's containers may reach of another's is decided here:
//
// - a bridge network's containers send only from this host's subnet of it and
//   never to the VXLAN port (the isolation section's rules for plexus0, per
//   bridge: a forged source or a raw VXLAN packet would cross networks), and
//   its VTEP takes only sources of the network;
// - traffic between two different overlay networks (the cluster network
//   included) is dropped, except what a link (`plexctl network connect A B
//   [--port P]`, config/network-links/A/B) lets A open towards B, and the
//   replies of those connections. Those accepts are a section of their own,
//   `network-links`, ahead of `isolation`: a linked packet crosses hosts on
//   the VTEP of its destination's network (the reply on the other's), where
//   the VTEP's "sources of this network only" rule would drop it. A forged
//   source never gets that far: the container's bridge port (`spoof`) and
//   its host's guards drop it where it is sent.
// - an internal network has no way out and none in: everything from it to
//   outside it (and to it from outside) is dropped, its links aside, and it
//   gets no masquerade;
// - other networks masquerade what leaves every overlay, as the cluster does.
//
// Rule ids carry 8 hex digits of each network's name (names are up to 63
// characters; ids at most 40), the same digits as the bridge `plxb-<hex>`.
import { createHash } from 'node:crypto'
import type { NetworkLinkValue } from '../../store/records.js'
import { networkBridgeName, vtepName } from '../model.js'
import { vxlanMembersOnly } from './isolation.js'
import type { Rule, Section } from './model.js'

/** after the isolation section (10), before published ports (50) and the cluster's accepts (100) */
export const NETWORKS_ORDER = 20
/** before the isolation section's VTEP source rules (10) */
export const LINKS_ORDER = 5

const MULTICAST = '224.0.0.0/4'

/** an overlay network as the rules see it; the cluster network is one, named `plexus` */
export interface OverlayNet {
  name: string
  cidr: string
  /** this host's subnet of it: its bridge's containers must send from it (absent: no lease here, no bridge rules) */
  subnet?: string
  /** a bridge network's VNI (absent: the cluster network, whose bridge and VTEP the isolation section guards) */
  vni?: number
  /** a bridge network's backend: a wireguard one has no VTEP (WireGuard holds each peer to its subnets) */
  backend?: 'vxlan' | 'wireguard'
  internal: boolean
}

export interface NetworksInput {
  cluster: OverlayNet
  bridges: OverlayNet[]
  links: NetworkLinkValue[]
  /** the VXLAN UDP port */
  vxlanPort: number
  /**
   * the WireGuard device's UDP port, when bridge networks use it and the cluster network does not (the
   * cluster section opens it otherwise)
   */
  wireguardPort?: number
  /**
   * the underlay addresses of the hosts holding a lease of a vxlan bridge network, when the cluster
   * network is not vxlan: its isolation section guards the VXLAN port otherwise
   */
  vxlanMembers?: string[]
}

const tag = (name: string) => createHash('sha256').update(name).digest('hex').slice(0, 8)

function bridgeGuards(n: OverlayNet, vxlanPort: number): Rule[] {
  if (n.vni === undefined || n.subnet === undefined) return []
  const t = tag(n.name)
  const iif = networkBridgeName(n.name)
  const vxlan = { proto: 'udp', dport: vxlanPort } as const
  return [
    { id: `spoof-fwd-${t}`, hook: 'forward', match: { iif, notSrc: n.subnet }, action: { type: 'drop' } },
    { id: `spoof-in-${t}`, hook: 'input', match: { iif, notSrc: n.subnet }, action: { type: 'drop' } },
    { id: `vxlan-fwd-${t}`, hook: 'forward', match: { iif, ...vxlan }, action: { type: 'drop' } },
    { id: `vxlan-in-${t}`, hook: 'input', match: { iif, ...vxlan }, action: { type: 'drop' } },
    ...(n.backend === 'wireguard'
      ? []
      : [
          {
            id: `overlay-spoof-${t}`,
            hook: 'forward',
            match: { iif: vtepName(n.vni), notSrc: n.cidr },
            action: { type: 'drop' },
          } satisfies Rule,
        ]),
  ]
}

function linkRules(link: NetworkLinkValue, from: OverlayNet, to: OverlayNet): Rule[] {
  const id = `link-${tag(from.name)}-${tag(to.name)}`
  const open = { src: from.cidr, dst: to.cidr }
  const ports = link.ports.map(
    (p): Rule => ({
      id: `${id}-${p.port}-${p.protocol}`,
      hook: 'forward',
      match: { ...open, proto: p.protocol, dport: p.port },
      action: { type: 'accept' },
    }),
  )
  return [
    ...(link.ports.length
      ? ports
      : [{ id, hook: 'forward', match: open, action: { type: 'accept' } } as Rule]),
    {
      id: `${id}-reply`,
      hook: 'forward',
      match: { src: to.cidr, dst: from.cidr, ctState: ['established', 'related'] },
      action: { type: 'accept' },
    },
  ]
}

/** The sections `network-links` and `networks`; without a bridge network, both empty. */
export function networksSections(input: NetworksInput): [Section, Section] {
  const { cluster, bridges } = input
  const all = [cluster, ...bridges]
  const byName = new Map(all.map((n) => [n.name, n]))
  const links: Section = { name: 'network-links', order: LINKS_ORDER, rules: [] }
  const rules: Rule[] = bridges.flatMap((n) => bridgeGuards(n, input.vxlanPort))
  const section: Section = { name: 'networks', order: NETWORKS_ORDER, rules }
  if (bridges.length === 0) return [links, section]
  // WireGuard authenticates every packet (the cluster section's reasoning for its own port)
  if (input.wireguardPort !== undefined)
    rules.push({
      id: 'wg-port',
      hook: 'input',
      match: { proto: 'udp', dport: input.wireguardPort },
      action: { type: 'accept' },
    })
  for (const l of [...input.links].sort((a, b) => `${a.from}/${a.to}`.localeCompare(`${b.from}/${b.to}`))) {
    const from = byName.get(l.from)
    const to = byName.get(l.to)
    if (from && to) links.rules.push(...linkRules(l, from, to))
  }
  // every pair of different overlays but cluster-to-cluster: dropped both ways
  for (const a of all)
    for (const b of all) {
      if (a === b) continue
      rules.push({
        id: `iso-${tag(a.name)}-${tag(b.name)}`,
        hook: 'forward',
        match: { src: a.cidr, dst: b.cidr },
        action: { type: 'drop' },
      })
    }
  for (const n of bridges) {
    const t = tag(n.name)
    if (n.internal)
      rules.push(
        {
          id: `internal-out-${t}`,
          hook: 'forward',
          match: { src: n.cidr, notDst: n.cidr },
          action: { type: 'drop' },
        },
        {
          id: `internal-in-${t}`,
          hook: 'forward',
          match: { dst: n.cidr, notSrc: n.cidr },
          action: { type: 'drop' },
        },
      )
    rules.push(
      { id: `fwd-from-${t}`, hook: 'forward', match: { src: n.cidr }, action: { type: 'accept' } },
      { id: `fwd-to-${t}`, hook: 'forward', match: { dst: n.cidr }, action: { type: 'accept' } },
    )
  }
  // no NAT between overlays (a linked connection keeps its source), nor within one; then masquerade what leaves
  for (const n of bridges) {
    const t = tag(n.name)
    for (const o of all)
      rules.push({
        id: `nat-${t}-${tag(o.name)}`,
        hook: 'postrouting',
        match: { src: n.cidr, dst: o.cidr },
        action: { type: 'return' },
      })
    rules.push({
      id: `nat-to-${t}`,
      hook: 'postrouting',
      match: { src: cluster.cidr, dst: n.cidr },
      action: { type: 'return' },
    })
    if (!n.internal)
      rules.push(
        {
          id: `nat-mc-${t}`,
          hook: 'postrouting',
          match: { src: n.cidr, dst: MULTICAST },
          action: { type: 'return' },
        },
        {
          id: `nat-leaving-${t}`,
          hook: 'postrouting',
          match: { src: n.cidr },
          action: { type: 'masquerade' },
        },
      )
  }
  // the isolation section's guard of the VXLAN port, for bridge networks beside a cluster network that
  // is not vxlan (anyone could send a raw VXLAN packet into a network); last, as a member's packet
  // returns from the hook's whole chain
  if (input.vxlanMembers) rules.push(...vxlanMembersOnly(input.vxlanMembers, input.vxlanPort))
  return [links, section]
}
