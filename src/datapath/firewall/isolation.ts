// Pure: the `isolation` firewall section (issue 18). Containers must not
// speak for anyone else, and the overlay must not take packets from anyone
// but the cluster's hosts:
//
// - a container's packet routed through this host (forward) or to it (input)
//   must carry a source inside this host's subnet: a forged address from
//   another subnet or from outside the cluster network never leaves the host;
// - containers may not send to the VXLAN port at all (a raw VXLAN packet
//   to another host would be decapsulated there with any inner source; once
//   masqueraded it comes from a member's underlay address, so only the
//   sending host can tell it from the real overlay);
// - the VXLAN port takes packets only from the underlay addresses of hosts
//   holding a valid lease; everything else is dropped;
// - decapsulated packets must carry a source inside the cluster network.
//
// Every rule here is a drop, so each one's packet counter (iptables -v,
// nft counters) is the count of what it stopped; `dropCounts` reads them.
// Same-subnet impersonation (a container taking its neighbour's address on
// the same bridge) is layer 2 and is not covered here: see the README.
import type { Cidr } from '../../ipam/cidr.js'
import { formatCidr } from '../../ipam/cidr.js'
import type { NetworkConfig } from '../../ipam/config.js'
import { BRIDGE_NAME, vtepName, WIREGUARD_NAME } from '../model.js'
import type { Rule, Section } from './model.js'

export interface IsolationInput {
  network: NetworkConfig
  /** this host's subnet */
  subnet: Cidr
  /** underlay addresses of the hosts with a valid lease (this one included) */
  members: string[]
  /** bridge networks share the WireGuard device with a wireguard cluster network */
  sharedWireguard?: boolean
}

/** before published ports (50) and the cluster section (100): a forged packet must never reach their accepts */
export const ISOLATION_ORDER = 10

/**
 * The VXLAN port takes packets only from these underlay addresses; the rest are dropped. A member's
 * packet returns from the hook's whole chain (one chain per hook holds every section's rules). Ids
 * come from the address, so a host joining adds one rule and moves no other.
 */
export function vxlanMembersOnly(members: string[], port: number): Rule[] {
  const vxlan = { proto: 'udp', dport: port } as const
  return [
    ...[...new Set(members)].sort().map(
      (m): Rule => ({
        id: `vxlan-member-${m.replaceAll('.', '-')}`,
        hook: 'input',
        match: { src: m, ...vxlan },
        action: { type: 'return' },
      }),
    ),
    { id: 'vxlan-non-member', hook: 'input', match: vxlan, action: { type: 'drop' } },
  ]
}

export function isolationSection(input: IsolationInput): Section {
  const { network } = input
  const subnet = formatCidr(input.subnet)
  const rules: Rule[] = [
    {
      id: 'ctr-spoof-fwd',
      hook: 'forward',
      match: { iif: BRIDGE_NAME, notSrc: subnet },
      action: { type: 'drop' },
    },
    {
      id: 'ctr-spoof-in',
      hook: 'input',
      match: { iif: BRIDGE_NAME, notSrc: subnet },
      action: { type: 'drop' },
    },
  ]
  if (network.Backend.Type === 'vxlan') {
    const vxlan = { proto: 'udp', dport: network.Backend.Port } as const
    rules.push(
      {
        id: 'ctr-vxlan-fwd',
        hook: 'forward',
        match: { iif: BRIDGE_NAME, ...vxlan },
        action: { type: 'drop' },
      },
      { id: 'ctr-vxlan-in', hook: 'input', match: { iif: BRIDGE_NAME, ...vxlan }, action: { type: 'drop' } },
      ...vxlanMembersOnly(input.members, network.Backend.Port),
      {
        id: 'overlay-spoof',
        hook: 'forward',
        match: { iif: vtepName(network.Backend.VNI), notSrc: network.Network },
        action: { type: 'drop' },
      },
    )
  }
  // Cryptokey routing already holds each peer to its own subnets; this is vxlan's rule, for the same
  // count. With bridge networks on the device too, their sources are as valid and one rule cannot name
  // several cidrs (a `return` would leave the whole hook's chain, the networks' drops included), so it
  // is left to WireGuard alone.
  if (network.Backend.Type === 'wireguard' && !input.sharedWireguard) {
    rules.push({
      id: 'overlay-spoof',
      hook: 'forward',
      match: { iif: WIREGUARD_NAME, notSrc: network.Network },
      action: { type: 'drop' },
    })
  }
  return { name: 'isolation', order: ISOLATION_ORDER, rules }
}
