import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { initNetwork, readNetwork } from '../../ipam/network.js'
import { PlexusError } from '../../lib/errors.js'
import { NetworkInfo, NetworkInitBody, NetworkInitQuery, NetworkInitReply } from '../contract/network.js'
import type { ApiDeps } from '../deps.js'

/** The cluster network config (store key config/network): read it, or set it once. */
/** what the /v1/network routes read (registered with that prefix) */
export type NetworkComponents = Pick<ApiDeps, 'store' | 'lease'>

export const networkRoutes: FastifyPluginAsyncTypebox<NetworkComponents> = async (app, deps) => {
  app.get('', { schema: { response: { 200: NetworkInfo } } }, async () => {
    const info = readNetwork(deps.store)
    if (!info) {
      throw new PlexusError('PLX_IPAM_NO_NETWORK', 'no network config is set: run `plexctl network init`', {
        status: 404,
      })
    }
    const mtu = deps.lease?.current()?.mtu
    return mtu === undefined ? info : { ...info, mtu }
  })

  app.put(
    '',
    { schema: { body: NetworkInitBody, querystring: NetworkInitQuery, response: { 200: NetworkInitReply } } },
    async (req) => initNetwork(deps.store, req.body, req.query.force === true),
  )
}
