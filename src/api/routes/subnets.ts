import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { subnetsReport } from '../../ipam/network.js'
import { SubnetsReply } from '../contract/subnets.js'
import type { ApiDeps } from '../deps.js'

/** Host-subnet leases across the cluster, the ignored ones with reasons, and this host's lease state. */
/** what the /v1/subnets routes read (registered with that prefix) */
export type SubnetsComponents = Pick<ApiDeps, 'store' | 'peerId' | 'startedAt' | 'lease' | 'addresses'>

export const subnetRoutes: FastifyPluginAsyncTypebox<SubnetsComponents> = async (app, deps) => {
  app.get(
    '',
    {
      schema: { response: { 200: SubnetsReply } },
    },
    async () => {
      const status = deps.lease?.status() ?? { state: 'disabled', since: deps.startedAt.toISOString() }
      const withdrawn = (deps.addresses?.stale() ?? []).map((a) => ({
        containerId: a.containerId,
        ifname: a.ifname,
        address: a.address,
      }))
      return { ...subnetsReport(deps.store), self: { peerId: deps.peerId, ...status, withdrawn } }
    },
  )
}
