import type { FastifyPluginAsync } from 'fastify'
import type { EndpointService } from '../../endpoints/service.js'
import { type LeaseView, outsideLease, validLeases } from '../../ipam/leases.js'
import { PlexusError } from '../../lib/errors.js'
import { LEASE_PREFIX } from '../../store/types.js'
import type { ApiDeps } from '../deps.js'

const strings = { type: 'array', items: { type: 'string' } } as const
const port = {
  type: 'object',
  properties: { name: { type: 'string' }, port: { type: 'integer' }, protocol: { type: 'string' } },
} as const
const published = {
  type: 'object',
  properties: {
    hostIp: { type: 'string' },
    hostPort: { type: 'integer' },
    containerPort: { type: 'integer' },
    protocol: { type: 'string' },
  },
} as const

const endpointSchema = {
  type: 'object',
  required: ['key', 'owner', 'local', 'containerId', 'ifname', 'name', 'host', 'ipv4', 'createdAt'],
  properties: {
    key: { type: 'string' },
    owner: { type: 'string' },
    local: { type: 'boolean' },
    containerId: { type: 'string' },
    ifname: { type: 'string' },
    name: { type: 'string' },
    namespace: { type: 'string' },
    host: { type: 'string' },
    ipv4: { type: 'string' },
    mac: { type: 'string' },
    netns: { type: 'string' },
    hostVeth: { type: 'string' },
    service: { type: 'string' },
    tags: strings,
    ports: { type: 'array', items: port },
    published: { type: 'array', items: published },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    createdAt: { type: 'string' },
    /** why the address is not served: outside every valid lease of its host (lost or withdrawn subnet) */
    withdrawn: { type: 'string' },
  },
} as const

const liveSchema = {
  type: 'object',
  properties: {
    hostVeth: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        up: { type: 'boolean' },
        mtu: { type: 'integer' },
        mac: { type: 'string' },
        bridge: { type: 'boolean' },
      },
    },
    container: {
      type: 'object',
      properties: {
        ifname: { type: 'string' },
        up: { type: 'boolean' },
        mtu: { type: 'integer' },
        mac: { type: 'string' },
        addresses: strings,
        routes: {
          type: 'array',
          items: { type: 'object', properties: { dst: { type: 'string' }, gateway: { type: 'string' } } },
        },
      },
    },
    dns: {
      type: 'object',
      properties: { nameservers: strings, search: strings, options: strings, domain: { type: 'string' } },
    },
    problems: strings,
  },
} as const

/** Container endpoints across the cluster (plexctl endpoints, plexctl inspect). */
export const endpointRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
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

  app.get(
    '/v1/endpoints',
    {
      schema: {
        response: {
          200: { type: 'object', properties: { endpoints: { type: 'array', items: endpointSchema } } },
        },
      },
    },
    async () => {
      const view = leases()
      return {
        endpoints: service()
          .list()
          .map((e) => flat(e, view)),
      }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/endpoints/:id',
    {
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: {
            id: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              endpoints: {
                type: 'array',
                items: { ...endpointSchema, properties: { ...endpointSchema.properties, live: liveSchema } },
              },
            },
          },
        },
      },
    },
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
