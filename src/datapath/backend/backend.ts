// One small interface per overlay backend, registered by name (flannel's
// pkg/backend model). A backend is pure: it turns this host's context and a
// remote lease into desired kernel entries; kernel.ts programs them.

import type { BackendType, NetworkConfig } from '../../ipam/config.js'
import type { Lease } from '../../ipam/leases.js'
import { PlexusError } from '../../lib/errors.js'
import type { LeaseValue } from '../../store/records.js'
import type { DesiredLink, LocalContext, RemoteEntries, WgIdentity } from '../model.js'

export interface Backend {
  readonly type: BackendType
  /** devices this backend adds besides the bridge */
  links(ctx: LocalContext): DesiredLink[]
  /** the kernel entries that reach one remote lease, or why it cannot be reached */
  remote(ctx: LocalContext, lease: Lease): RemoteEntries | { refused: string }
  /** backend data this host publishes in its own lease */
  leaseData(network: NetworkConfig, peerId: string, local?: LocalIdentity): LeaseValue['backend']
}

/** What this host knows of itself that a backend may publish (absent while not known yet). */
export interface LocalIdentity extends WgIdentity {
  /** underlay address others reach this host at */
  publicIp?: string
}

const registry = new Map<string, Backend>()

export function registerBackend(b: Backend): void {
  registry.set(b.type, b)
}

/** PLX_DATAPATH_UNKNOWN_BACKEND for a type no backend registered */
export function backendFor(type: string): Backend {
  const b = registry.get(type)
  if (!b) {
    throw new PlexusError(
      'PLX_DATAPATH_UNKNOWN_BACKEND',
      `unknown backend type "${type}" (known: ${[...registry.keys()].sort().join(', ')})`,
    )
  }
  return b
}
