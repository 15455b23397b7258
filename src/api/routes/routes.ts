import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RoutesReply } from '../contract/routes.js'
import type { ApiDeps } from '../deps.js'

/** The overlay datapath: desired vs programmed routes, how each remote host is reached, drift repaired. */
/** what the /v1/routes routes read (registered with that prefix) */
export type RoutesComponents = Pick<ApiDeps, 'datapath'>

export const routeRoutes: FastifyPluginAsyncTypebox<RoutesComponents> = async (app, deps) => {
  app.get(
    '',
    { schema: { response: { 200: RoutesReply } } },
    async () =>
      deps.datapath?.status() ?? {
        state: 'disabled',
        reason: 'the datapath is not running on this agent',
        firewall: { backend: 'none' },
        routes: [],
        remotes: [],
        repairs: {},
        passes: 0,
      },
  )
}
