import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestKeyRotation } from '../../datapath/backend/wireguard/rotation.js'
import { initNetwork, requireNetwork } from '../../ipam/network.js'
import {
  NetworkInfo,
  NetworkInitBody,
  NetworkInitQuery,
  NetworkInitReply,
  RotateKeysReply,
} from '../contract/network.js'
import type { ApiDeps } from '../deps.js'

/** The cluster network config (store key config/network): read it, or set it once. */
/** what the /v1/network routes read (registered with that prefix) */
export type NetworkComponents = Pick<ApiDeps, 'store' | 'lease'>

export const networkRoutes: FastifyPluginAsyncTypebox<NetworkComponents> = async (app, deps) => {
  app.get('', { schema: { response: { 200: NetworkInfo } } }, async () => {
    const info = requireNetwork(deps.store)
    const mtu = deps.lease?.current()?.mtu
    return mtu === undefined ? info : { ...info, mtu }
  })

  app.put(
    '',
    { schema: { body: NetworkInitBody, querystring: NetworkInitQuery, response: { 200: NetworkInitReply } } },
    async (req) => initNetwork(deps.store, req.body, req.query.force === true),
  )

  // every host rotates its WireGuard key, in two phases (src/datapath/README.md); the reply is the request
  app.post('/rotate-keys', { schema: { response: { 200: RotateKeysReply } } }, async () =>
    requestKeyRotation(deps.store),
  )
}
