// The cluster network config (store key config/network, flannel's net-conf.json fields).
import { type Static, Type } from '@sinclair/typebox'
import { NetworkConfig, type NetworkConfigInput, WireguardRotationRecord } from '../../store/schemas.js'

/** GET /v1/network: the stored config, who set it and when */
export const NetworkInfo = Type.Object({
  /** null when the stored value is invalid (then `problem` says why) */
  config: Type.Union([NetworkConfig, Type.Null()]),
  problem: Type.Optional(Type.String()),
  /** peer id of the host that wrote it */
  setBy: Type.String(),
  setAt: Type.String(),
  /** this host's overlay MTU, once it holds a lease */
  mtu: Type.Optional(Type.Integer()),
})
export type NetworkInfo = Static<typeof NetworkInfo>

/**
 * PUT /v1/network: only the outer type is checked by the schema:
 * parseNetworkConfig names every bad field (and suggests the right spelling),
 * where the schema would only say "must NOT have additional properties".
 */
export const NetworkInitBody = Type.Unsafe<Static<typeof NetworkConfigInput>>({ type: 'object' })
export type NetworkInitBody = Static<typeof NetworkInitBody>

/** ?force replaces a config that differs (re-addressing a live cluster) */
export const NetworkInitQuery = Type.Object(
  { force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)

export const NetworkInitReply = Type.Object({ config: NetworkConfig, changed: Type.Boolean() })
export type NetworkInitReply = Static<typeof NetworkInitReply>

/** POST /v1/network/rotate-keys: the request every host's datapath acts on (store key config/wireguard-rotation) */
export const RotateKeysReply = WireguardRotationRecord
export type RotateKeysReply = Static<typeof RotateKeysReply>
