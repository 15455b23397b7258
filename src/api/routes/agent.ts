// The application API's own routes (src/api/app-api.ts): the calling
// container's view of itself and its self-registration. Every route acts on
// the caller's endpoint, found from the peer address, never on a name in the
// request, so a container registers only itself.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { PlexusError } from '../../lib/errors.js'
import type { Endpoint } from '../../services/catalog.js'
import { LABEL_PATTERN, portsSchema, tagsSchema } from '../../services/model.js'
import { type RegistrationBody, ServiceRegistry } from '../../services/registry.js'
import type { ApiDeps } from '../deps.js'
import { nameParam, registered } from './services.js'

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

const selfBody = {
  type: 'object',
  additionalProperties: false,
  required: ['service'],
  properties: {
    service: { type: 'string', pattern: LABEL_PATTERN },
    tags: tagsSchema,
    ports: portsSchema,
    /** a TTL check: the registration lapses unless `PUT /v1/agent/service/<service>/pass` comes within this time */
    ttlSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
  },
} as const

export const agentRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const registry = new ServiceRegistry(deps)

  app.get(
    '/v1/agent/self',
    {
      schema: {
        description: 'the calling container as this agent knows it (found from its address)',
        response: {
          200: {
            type: 'object',
            required: ['endpointKey', 'containerId', 'ifname', 'name', 'ipv4', 'host'],
            properties: {
              endpointKey: { type: 'string' },
              containerId: { type: 'string' },
              ifname: { type: 'string' },
              name: { type: 'string' },
              ipv4: { type: 'string' },
              host: { type: 'string' },
              service: { type: 'string' },
            },
          },
        },
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

  app.put<{ Body: Omit<RegistrationBody, 'ifname' | 'checks'> }>(
    '/v1/agent/service',
    {
      schema: {
        description: "registers the caller's own endpoint in a service (tags, ports, optional TTL check)",
        body: selfBody,
        response: { 200: registered },
      },
    },
    async (req) => registry.registerEndpoint(callerOf(req), req.body),
  )

  app.put<{ Params: { name: string } }>(
    '/v1/agent/service/:name/pass',
    {
      schema: {
        description: "renews the caller's TTL registration in the service for one more TTL",
        params: nameParam,
        response: { 200: registered },
      },
    },
    async (req) => registry.renew(callerOf(req), req.params.name),
  )

  app.delete<{ Params: { name: string } }>(
    '/v1/agent/service/:name',
    { schema: { params: nameParam, response: { 204: { type: 'null' } } } },
    async (req, reply) => {
      const ep = callerOf(req)
      await registry.deregister(ep.value.containerId, req.params.name, ep.value.ifname)
      return reply.code(204).send()
    },
  )
}
