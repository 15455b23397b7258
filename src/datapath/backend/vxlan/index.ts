// vxlan: one device plexus.<VNI> (learning off, our UDP port, MTU = underlay
// MTU - 50, address = subnet .0/32). Each remote subnet is reached via the
// remote's VTEP address (its subnet .0): a permanent neighbour entry maps
// that address to the remote VTEP MAC, a permanent FDB entry maps the MAC to
// the remote's underlay address, and an onlink route sends the subnet there.
// With DirectRouting, remotes on our L2 segment get a plain direct route.
import { formatIPv4 } from '../../../ipam/cidr.js'
import type { Lease } from '../../../ipam/leases.js'
import type { DesiredLink, LocalContext, RemoteEntries } from '../../model.js'
import { vtepName } from '../../model.js'
import { type Backend, registerBackend } from '../backend.js'
import { directRoute, sameSegment } from '../direct.js'
import { vtepMac } from './mac.js'

export const vxlanBackend: Backend = {
  type: 'vxlan',

  links(ctx: LocalContext): DesiredLink[] {
    const { Backend: b } = ctx.network
    return [
      {
        name: vtepName(b.VNI),
        kind: 'vxlan',
        mtu: ctx.mtu,
        mac: ctx.vtepMac,
        vxlan: {
          vni: b.VNI,
          port: b.Port,
          local: ctx.underlay.address,
          dev: ctx.underlay.ifname,
          learning: false,
        },
        addresses: [`${formatIPv4(ctx.self.subnet.base)}/32`],
      },
    ]
  },

  remote(ctx: LocalContext, lease: Lease): RemoteEntries | { refused: string } {
    if (ctx.network.Backend.DirectRouting && sameSegment(ctx, lease.value.publicIp))
      return directRoute(ctx, lease)
    const mac = lease.value.backend.vtepMac
    if (lease.value.backend.type !== 'vxlan' || !mac) {
      return {
        refused: `${lease.value.hostname} publishes no VTEP MAC (its backend is ${lease.value.backend.type})`,
      }
    }
    if (lease.value.backend.vni !== undefined && lease.value.backend.vni !== ctx.network.Backend.VNI) {
      return {
        refused: `${lease.value.hostname} uses VNI ${lease.value.backend.vni}, this network VNI ${ctx.network.Backend.VNI}`,
      }
    }
    const dev = vtepName(ctx.network.Backend.VNI)
    const vtepIp = formatIPv4(lease.subnet.base)
    return {
      mode: 'vxlan',
      routes: [{ dst: lease.value.subnet, gateway: vtepIp, dev, onlink: true }],
      neighbours: [{ dev, ip: vtepIp, mac }],
      fdb: [{ dev, mac, dst: lease.value.publicIp }],
    }
  },

  leaseData(network, peerId) {
    return { type: 'vxlan', vtepMac: vtepMac(peerId, network.Backend.VNI), vni: network.Backend.VNI }
  },
}

registerBackend(vxlanBackend)
