// Direct routing, shared by host-gw and vxlan's DirectRouting (flannel's
// route_network.go): the remote subnet is routed via the remote's underlay
// address, which only works when that address is on our L2 segment.
import { containsAddress, formatCidr, parseIPv4 } from '../../ipam/cidr.js'
import type { Lease } from '../../ipam/leases.js'
import type { LocalContext, RemoteEntries } from '../model.js'

export function sameSegment(ctx: LocalContext, ip: string): boolean {
  const n = parseIPv4(ip)
  return n !== undefined && ctx.underlay.prefixes.some((p) => containsAddress(p, n))
}

export function directRoute(ctx: LocalContext, lease: Lease): RemoteEntries | { refused: string } {
  const ip = lease.value.publicIp
  if (!sameSegment(ctx, ip)) {
    const nets = ctx.underlay.prefixes.map(formatCidr)
    return {
      refused: `${lease.value.hostname} (${ip}) is not on this host's L2 segment (${ctx.underlay.ifname}: ${nets.join(', ') || 'no address'}): host-gw needs a direct route`,
    }
  }
  return {
    mode: 'direct',
    routes: [{ dst: lease.value.subnet, gateway: ip, dev: ctx.underlay.ifname, onlink: false }],
    neighbours: [],
    fdb: [],
  }
}
