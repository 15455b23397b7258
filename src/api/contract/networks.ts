// Named networks (store keys config/networks/<name>; bridge, issue 17 item 2; macvlan, item 3) and the links
// between them (config/network-links/<from>/<to>).
import { type Static, Type } from '@sinclair/typebox'
import { StringEnum } from '../../lib/schema.js'
import { Label, NetworkLinkRecord, NetworkRecord } from '../../store/schemas.js'
import { InvalidLease, LeaseRow } from './subnets.js'

/**
 * POST /v1/networks: only the outer type is checked by the schema:
 * parseMacvlanNetwork (src/ipam/macvlan.ts) names every bad field at once,
 * where the schema would stop at the first.
 */
export const NetworkCreateBody = Type.Unsafe<
  | {
      name: string
      driver: 'macvlan'
      parent?: string
      subnet: string
      range: string
      gateway?: string
      blockLen?: number
      mtu?: number
    }
  | {
      name: string
      driver: 'bridge'
      cidr: string
      subnetLen?: number
      backend?: 'vxlan' | 'wireguard'
      vni?: number
      internal?: boolean
    }
>({ type: 'object' })
export type NetworkCreateBody = Static<typeof NetworkCreateBody>

export const NetworkCreateReply = Type.Object({ network: NetworkRecord, changed: Type.Boolean() })
export type NetworkCreateReply = Static<typeof NetworkCreateReply>

export const NetworkNameParams = Type.Object({ name: Label }, { additionalProperties: false })

/** POST /v1/networks/:name/connect: checked by mergeLink (src/ipam/bridge.ts), every problem named */
export const NetworkConnectBody = Type.Unsafe<{ to: string; port?: number; protocol?: 'tcp' | 'udp' }>({
  type: 'object',
})
export type NetworkConnectBody = Static<typeof NetworkConnectBody>

export const NetworkConnectReply = Type.Object({ link: NetworkLinkRecord, changed: Type.Boolean() })
export type NetworkConnectReply = Static<typeof NetworkConnectReply>

export const NetworkLinkParams = Type.Object({ name: Label, to: Label }, { additionalProperties: false })

/** ?force removes a network containers are still attached to (their addresses are then no longer reserved) */
export const NetworkRemoveQuery = Type.Object(
  { force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)

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

/** a container interface on a network (src/ipam/network.ts NetworkMember) */
export const NetworkMember = Type.Object({
  network: Type.String(),
  containerId: Type.String(),
  ifname: Type.String(),
  host: Type.String(),
  peerId: Type.String(),
  address: Type.String(),
  mac: Type.Optional(Type.String()),
  /** the default route's next hop set for it (absent: the network's gateway) */
  gateway: Type.Optional(Type.String()),
})
export type NetworkMember = Static<typeof NetworkMember>

/** one network, the cluster's or a named one: each host's subnet (block) and its members */
export const NetworkOverview = Type.Object({
  name: Type.String(),
  driver: StringEnum(['cluster', 'bridge', 'macvlan']),
  backend: Type.String(),
  /** the cluster's and a bridge network's cidr, a macvlan network's range */
  cidr: Type.String(),
  subnet: Type.Optional(Type.String()),
  gateway: Type.Optional(Type.String()),
  hosts: Type.Array(Type.Object({ host: Type.String(), peerId: Type.String(), subnet: Type.String() })),
  members: Type.Array(NetworkMember),
})
export type NetworkOverview = Static<typeof NetworkOverview>

/** GET /v1/networks/overview (`plexctl networks`, `plexctl inspect`) */
export const NetworksOverviewReply = Type.Object({ networks: Type.Array(NetworkOverview) })
export type NetworksOverviewReply = Static<typeof NetworksOverviewReply>
