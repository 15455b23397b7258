// The application API's own routes (src/api/app-api.ts): the calling
// container's view of itself and its self-registration. Every route acts on
// the caller's endpoint, found from the peer address, never on a name in the
// request, so a container registers only itself.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { PlexusError } from '../../lib/errors.js'
import type { Endpoint } from '../../services/catalog.js'
import { ServiceRegistry } from '../../services/registry.js'
import { authorize } from '../acl-guard.js'
import { NameParam, NoContent } from '../contract/common.js'
import { AgentSelf, Registered, SelfRegistrationBody } from '../contract/services.js'
import type { ApiDeps } from '../deps.js'

/** The caller's endpoint, set by the application API's identity hook before any handler runs. */
const callers = new WeakMap<FastifyRequest, Endpoint>()

export function setCaller(req: FastifyRequest, ep: Endpoint): void {
  callers.set(req, ep)
}

export function callerOf(req: FastifyRequest): Endpoint {
  const ep = callers.get(req)
  // the hook refuses unknown callers before routing: reaching here without one is our bug
  if (!ep) throw new PlexusError('PLX_API_INTERNAL', 'no caller identity on this request')
  return ep
}

/** what the /v1/agent routes read (registered with that prefix) */
export type AgentComponents = Pick<ApiDeps, 'store' | 'peerId'>

export const agentRoutes: FastifyPluginAsyncTypebox<AgentComponents> = async (app, deps) => {
  const registry = new ServiceRegistry(deps)

  app.get(
    '/self',
    {
      schema: {
        description: 'the calling container as this agent knows it (found from its address)',
        response: { 200: AgentSelf },
      },
    },
    async (req) => {
      const ep = callerOf(req)
      const v = ep.value
      return {
        endpointKey: ep.key,
        containerId: v.containerId,
        ifname: v.ifname,
        name: v.name,
        ipv4: v.ipv4,
        host: v.host,
        ...(v.service ? { service: v.service } : {}),
      }
    },
  )

  app.put(
    '/service',
    {
      schema: {
        description: "registers the caller's own endpoint in a service (tags, ports, optional TTL check)",
        body: SelfRegistrationBody,
        response: { 200: Registered },
      },
    },
    async (req) => {
      authorize(req, { kind: 'service', op: 'register', name: req.body.service })
      return registry.registerEndpoint(callerOf(req), req.body)
    },
  )

  app.put(
    '/service/:name/pass',
    {
      schema: {
        description: "renews the caller's TTL registration in the service for one more TTL",
        params: NameParam,
        response: { 200: Registered },
      },
    },
    async (req) => registry.renew(callerOf(req), req.params.name),
  )

  app.delete(
    '/service/:name',
    { schema: { params: NameParam, response: { 204: NoContent } } },
    async (req, reply) => {
      const ep = callerOf(req)
      await registry.deregister(ep.value.containerId, req.params.name, ep.value.ifname)
      return reply.code(204).send(null)
    },
  )
}
