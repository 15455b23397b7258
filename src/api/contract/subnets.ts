import { type Static, Type } from '@sinclair/typebox'
import { Nullable } from '../../lib/schema.js'

/** one host-subnet lease as the store holds it */
export const LeaseRow = Type.Object({
  peerId: Type.String(),
  host: Type.String(),
  subnet: Type.String(),
  publicIp: Type.String(),
  backend: Type.String(),
  vtepMac: Type.Optional(Type.String()),
  claimedAt: Type.String(),
  expiresInSeconds: Type.Integer(),
  self: Type.Boolean(),
})

/** a lease record ignored, and why (a conflict names the subnet and who holds it) */
export const InvalidLease = Type.Object({
  key: Type.String(),
  owner: Type.String(),
  kind: Type.String(),
  reason: Type.String(),
  subnet: Type.Optional(Type.String()),
  heldBy: Type.Optional(Type.String()),
})

/** this host's lease state (src/ipam/README.md) */
export const SelfLease = Type.Object({
  peerId: Type.String(),
  state: Type.String(),
  reason: Type.Optional(Type.String()),
  subnet: Type.Optional(Type.String()),
  since: Type.String(),
  confirmedAt: Type.Optional(Type.String()),
  fenceAt: Type.Optional(Type.String()),
  withdrawAt: Type.Optional(Type.String()),
  /** this host's containers whose addresses lie outside its lease (lost or withdrawn subnet) */
  withdrawn: Type.Optional(
    Type.Array(Type.Object({ containerId: Type.String(), ifname: Type.String(), address: Type.String() })),
  ),
})

/** GET /v1/subnets: host-subnet leases across the cluster, the ignored ones, this host's state */
export const SubnetsReply = Type.Object({
  network: Nullable(Type.String()),
  leases: Type.Array(LeaseRow),
  invalid: Type.Array(InvalidLease),
  self: SelfLease,
})
export type SubnetsReply = Static<typeof SubnetsReply>
