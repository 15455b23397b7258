import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  connectNetworks,
  createNamedNetwork,
  disconnectNetworks,
  namedNetworksReport,
  networksOverview,
  removeNamedNetwork,
} from '../../ipam/network.js'
import {
  NetworkConnectBody,
  NetworkConnectReply,
  NetworkCreateBody,
  NetworkCreateReply,
  NetworkLinkParams,
  NetworkNameParams,
  NetworkRemoveQuery,
  NetworkRemoveReply,
  NetworksOverviewReply,
  NetworksReply,
} from '../contract/networks.js'
import type { ApiDeps } from '../deps.js'

/**
 * Named networks: list with each host's block, create, remove, connect; every network (the cluster's too)
 * with its members. The rules are src/ipam's.
 */
/** what the /v1/networks routes read (registered with that prefix) */
export type NetworksComponents = Pick<ApiDeps, 'store' | 'networks'>

export const networksRoutes: FastifyPluginAsyncTypebox<NetworksComponents> = async (app, deps) => {
  app.get('', { schema: { response: { 200: NetworksReply } } }, async () => ({
    networks: namedNetworksReport(deps.store).map((r) => {
      const status = deps.networks?.get(r.network.name)?.lease.status()
      return status
        ? {
            ...r,
            self: {
              state: status.state,
              ...(status.reason ? { reason: status.reason } : {}),
              ...(status.subnet ? { subnet: status.subnet } : {}),
            },
          }
        : r
    }),
  }))

  app.get('/overview', { schema: { response: { 200: NetworksOverviewReply } } }, async () => ({
    networks: networksOverview(deps.store),
  }))

  app.post('', { schema: { body: NetworkCreateBody, response: { 200: NetworkCreateReply } } }, async (req) =>
    createNamedNetwork(deps.store, req.body),
  )

  app.delete(
    '/:name',
    {
      schema: {
        params: NetworkNameParams,
        querystring: NetworkRemoveQuery,
        response: { 200: NetworkRemoveReply },
      },
    },
    async (req) => {
      await removeNamedNetwork(deps.store, req.params.name, req.query.force === true)
      return { removed: req.params.name }
    },
  )

  app.post(
    '/:name/connect',
    {
      schema: { params: NetworkNameParams, body: NetworkConnectBody, response: { 200: NetworkConnectReply } },
    },
    async (req) => connectNetworks(deps.store, req.params.name, req.body),
  )

  app.delete(
    '/:name/connect/:to',
    { schema: { params: NetworkLinkParams, response: { 200: NetworkRemoveReply } } },
    async (req) => {
      await disconnectNetworks(deps.store, req.params.name, req.params.to)
      return { removed: `${req.params.name}/${req.params.to}` }
    },
  )
}
