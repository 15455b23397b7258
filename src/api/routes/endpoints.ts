import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { EndpointService } from '../../endpoints/service.js'
import { type LeaseView, outsideLease, validLeases } from '../../ipam/leases.js'
import { PlexusError } from '../../lib/errors.js'
import { LEASE_PREFIX } from '../../store/types.js'
import { EndpointDetailReply, EndpointParams, EndpointsReply } from '../contract/endpoints.js'
import type { ApiDeps } from '../deps.js'

/** Container endpoints across the cluster (plexctl endpoints, plexctl inspect). */
/** what the /v1/endpoints routes read (registered with that prefix) */
export type EndpointsComponents = Pick<ApiDeps, 'store' | 'lease' | 'endpoints'>

export const endpointRoutes: FastifyPluginAsyncTypebox<EndpointsComponents> = async (app, deps) => {
  const service = (): EndpointService => {
    if (!deps.endpoints) {
      throw new PlexusError('PLX_ENDPOINTS_NOT_READY', 'the endpoint service is not running', { status: 503 })
    }
    return deps.endpoints
  }
  const leases = (): LeaseView | undefined => {
    const network = deps.lease?.network()
    return network ? validLeases(deps.store.list(LEASE_PREFIX), network) : undefined
  }
  const flat = (e: ReturnType<EndpointService['list']>[number], view = leases()) => {
    const withdrawn = view ? outsideLease(e.owner, e.value.ipv4, view) : undefined
    return { key: e.key, owner: e.owner, local: e.local, ...e.value, ...(withdrawn ? { withdrawn } : {}) }
  }

  app.get('', { schema: { response: { 200: EndpointsReply } } }, async () => {
    const view = leases()
    return {
      endpoints: service()
        .list()
        .map((e) => flat(e, view)),
    }
  })

  app.get(
    '/:id',
    { schema: { params: EndpointParams, response: { 200: EndpointDetailReply } } },
    async (req) => {
      const s = service()
      const found = s.find(req.params.id)
      if (!found.length) {
        throw new PlexusError(
          'PLX_ENDPOINTS_NOT_FOUND',
          `no endpoint with container id or name "${req.params.id}"`,
          {
            status: 404,
          },
        )
      }
      const ids = new Set(found.map((e) => e.value.containerId))
      if (ids.size > 1) {
        throw new PlexusError(
          'PLX_ENDPOINTS_AMBIGUOUS',
          `"${req.params.id}" matches ${ids.size} containers: ${[...ids].map((i) => i.slice(0, 12)).join(', ')}`,
          { status: 409 },
        )
      }
      const endpoints = await Promise.all(
        found.map(async (e) => ({ ...flat(e), ...(e.local ? { live: await s.live(e.value) } : {}) })),
      )
      return { endpoints }
    },
  )
}
