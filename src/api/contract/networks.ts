// Named networks (store keys config/networks/<name>; macvlan, issue 17 item 3).
import { type Static, Type } from '@sinclair/typebox'
import { Label, NetworkRecord } from '../../store/schemas.js'
import { InvalidLease, LeaseRow } from './subnets.js'

/**
 * POST /v1/networks: only the outer type is checked by the schema:
 * parseMacvlanNetwork (src/ipam/macvlan.ts) names every bad field at once,
 * where the schema would stop at the first.
 */
export const NetworkCreateBody = Type.Unsafe<{
  name: string
  driver: 'macvlan'
  parent?: string
  subnet: string
  range: string
  gateway?: string
  blockLen?: number
}>({ type: 'object' })
export type NetworkCreateBody = Static<typeof NetworkCreateBody>

export const NetworkCreateReply = Type.Object({ network: NetworkRecord, changed: Type.Boolean() })
export type NetworkCreateReply = Static<typeof NetworkCreateReply>

export const NetworkNameParams = Type.Object({ name: Label }, { additionalProperties: false })

export const NetworkRemoveReply = Type.Object({ removed: Type.String() })
export type NetworkRemoveReply = Static<typeof NetworkRemoveReply>

/** one named network: its record, the block each host holds, the ignored leases, this host's block state */
export const NamedNetworkInfo = Type.Object({
  network: NetworkRecord,
  blocks: Type.Array(LeaseRow),
  invalid: Type.Array(InvalidLease),
  /** this host's lease state for the network's block (absent until this agent has opened the network) */
  self: Type.Optional(
    Type.Object({
      state: Type.String(),
      reason: Type.Optional(Type.String()),
      subnet: Type.Optional(Type.String()),
    }),
  ),
})

/** GET /v1/networks */
export const NetworksReply = Type.Object({ networks: Type.Array(NamedNetworkInfo) })
export type NetworksReply = Static<typeof NetworksReply>
