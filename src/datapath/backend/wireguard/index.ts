// wireguard (flannel's name): one device plexus-wg (MTU = underlay MTU - 60,
// address = subnet .0/32) with one peer per remote host: its public key and
// endpoint from its lease, allowed IPs = its subnet (WireGuard's cryptokey
// routing then drops anything a peer sends from outside its own subnet), and a
// route for that subnet into the device. The device itself and its peers are
// programmed by the driver (device.ts), not by netlink: see README.md.
import { formatIPv4 } from '../../../ipam/cidr.js'
import type { Lease } from '../../../ipam/leases.js'
import { type DesiredLink, type LocalContext, type RemoteEntries, WIREGUARD_NAME } from '../../model.js'
import { type Backend, registerBackend } from '../backend.js'

export const wireguardBackend: Backend = {
  type: 'wireguard',

  links(ctx: LocalContext): DesiredLink[] {
    return [
      {
        name: WIREGUARD_NAME,
        kind: 'wireguard',
        mtu: ctx.mtu,
        addresses: [`${formatIPv4(ctx.self.subnet.base)}/32`],
      },
    ]
  },

  remote(ctx: LocalContext, lease: Lease): RemoteEntries | { refused: string } {
    const { type, publicKey, nextPublicKey, endpoint } = lease.value.backend
    if (type !== 'wireguard' || !publicKey || !endpoint) {
      return {
        refused: `${lease.value.hostname} publishes no WireGuard key and endpoint (its backend is ${type})`,
      }
    }
    const own = [ctx.wgPublicKey, ctx.wgNextPublicKey]
    if (own.includes(publicKey) || (nextPublicKey && own.includes(nextPublicKey)))
      return { refused: `${lease.value.hostname} publishes this host's own public key` }
    // A host rotating its key announces the next one first (rotation.ts, phase 1): it gets a peer of its
    // own with no allowed IPs (an allowed IP belongs to one peer of a device; the current key's keeps the
    // routing), so the host's first handshake under its new key is answered at once.
    const next = nextPublicKey ? [{ publicKey: nextPublicKey, endpoint, allowedIps: [] }] : []
    return {
      mode: 'wireguard',
      // the gateway only names the remote's .0 for `ip route` readers: a layer-3 device sends by route alone
      routes: [
        {
          dst: lease.value.subnet,
          gateway: formatIPv4(lease.subnet.base),
          dev: WIREGUARD_NAME,
          onlink: true,
        },
      ],
      neighbours: [],
      fdb: [],
      peers: [{ publicKey, endpoint, allowedIps: [lease.value.subnet] }, ...next],
    }
  },

  leaseData(network, _peerId, local) {
    if (!local?.wgPublicKey || !local.publicIp) return { type: 'wireguard' }
    return {
      type: 'wireguard',
      publicKey: local.wgPublicKey,
      ...(local.wgNextPublicKey ? { nextPublicKey: local.wgNextPublicKey } : {}),
      endpoint: `${local.publicIp}:${network.Backend.Port}`,
    }
  },
}

registerBackend(wireguardBackend)
