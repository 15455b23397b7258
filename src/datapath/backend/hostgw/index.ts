// host-gw: no device of its own; every remote subnet is routed directly via
// the remote's underlay address. A remote that is not on our L2 segment
// cannot be reached this way and is refused (reported, counted, not programmed).
import type { Lease } from '../../../ipam/leases.js'
import type { LocalContext, RemoteEntries } from '../../model.js'
import { type Backend, registerBackend } from '../backend.js'
import { directRoute } from '../direct.js'

export const hostgwBackend: Backend = {
  type: 'host-gw',
  links: () => [],
  remote(ctx: LocalContext, lease: Lease): RemoteEntries | { refused: string } {
    if (lease.value.backend.type !== 'host-gw') {
      return {
        refused: `${lease.value.hostname} uses backend ${lease.value.backend.type}, this network host-gw`,
      }
    }
    return directRoute(ctx, lease)
  },
  leaseData: () => ({ type: 'host-gw' }),
}

registerBackend(hostgwBackend)
