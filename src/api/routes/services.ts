import type { FastifyPluginAsync } from 'fastify'
import { PlexusError } from '../../lib/errors.js'
import { type Catalog, hostCounts, type Member, type ServiceEntry } from '../../services/catalog.js'
import { checkSchema, registrationBodySchema, serviceBodySchema } from '../../services/model.js'
import { nearestFirst } from '../../services/near.js'
import { type RegistrationBody, type ServiceBody, ServiceRegistry } from '../../services/registry.js'
import type { ApiDeps } from '../deps.js'
import { flag, flagSchema } from './kv.js'

const port = {
  type: 'object',
  required: ['port', 'protocol'],
  properties: { name: { type: 'string' }, port: { type: 'integer' }, protocol: { type: 'string' } },
} as const
const strings = { type: 'array', items: { type: 'string' } } as const
const counts = {
  type: 'object',
  required: ['host', 'healthy', 'total'],
  properties: { host: { type: 'string' }, healthy: { type: 'integer' }, total: { type: 'integer' } },
} as const
const summary = {
  type: 'object',
  required: ['name', 'defined', 'tags', 'ports', 'healthy', 'total', 'hosts'],
  properties: {
    name: { type: 'string' },
    defined: { type: 'boolean' },
    tags: strings,
    ports: { type: 'array', items: port },
    checks: { type: 'array', items: checkSchema },
    healthy: { type: 'integer' },
    total: { type: 'integer' },
    hosts: { type: 'array', items: counts },
  },
} as const
const member = {
  type: 'object',
  required: ['endpointKey', 'host', 'name', 'ipv4', 'tags', 'ports', 'healthy', 'source', 'checks'],
  properties: {
    endpointKey: { type: 'string' },
    host: { type: 'string' },
    name: { type: 'string' },
    ipv4: { type: 'string' },
    ipv6: { type: 'string' },
    tags: strings,
    ports: { type: 'array', items: port },
    healthy: { type: 'boolean' },
    source: { type: 'string' },
    checks: { type: 'array', items: { type: 'string' } },
    expiresAt: { type: 'string' },
  },
} as const
const detail = {
  ...summary,
  required: [...summary.required, 'endpoints'],
  properties: { ...summary.properties, endpoints: { type: 'array', items: member } },
} as const
/** `:name` of a named object (a DNS label): services, jobs */
export const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 63 } },
} as const
const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 253 } },
} as const
/** a registration as written: its key, the endpoint it names, when it lapses (TTL) */
export const registered = {
  type: 'object',
  required: ['key', 'endpointKey'],
  properties: { key: { type: 'string' }, endpointKey: { type: 'string' }, expiresAt: { type: 'string' } },
} as const

function summarize(e: ServiceEntry) {
  const d = e.definition
  return {
    name: e.name,
    defined: d !== undefined,
    tags: d?.tags ?? [],
    ports: d?.ports ?? [],
    ...(d?.checks ? { checks: d.checks } : {}),
    healthy: e.members.filter((m) => m.healthy).length,
    total: e.members.length,
    hosts: hostCounts(e),
  }
}

function memberOut(m: Member) {
  return {
    endpointKey: m.endpointKey,
    host: m.host,
    name: m.name,
    ipv4: m.ipv4,
    ...(m.ipv6 ? { ipv6: m.ipv6 } : {}),
    tags: m.tags,
    ports: m.ports,
    healthy: m.healthy,
    source: m.source,
    checks: m.checks.map((c) => c.name),
    ...(m.expiresAt !== undefined ? { expiresAt: new Date(m.expiresAt).toISOString() } : {}),
  }
}

function lookup(catalog: Catalog, name: string): ServiceEntry | undefined {
  return catalog.services.get(name)
}

const healthQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** only members whose checks pass */
    passing: flagSchema,
    /** only members with this tag */
    tag: { type: 'string', minLength: 1, maxLength: 63 },
    /** nearest first from this host (its name), or `_agent` (the host answering) */
    near: { type: 'string', minLength: 1, maxLength: 63 },
  },
} as const

/** Reads of the catalog: mounted by the operator API and the application API. */
export const serviceReadRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const registry = new ServiceRegistry(deps)

  app.get('/v1/services', { schema: { response: { 200: { type: 'array', items: summary } } } }, async () =>
    [...registry.catalog().services.values()].sort((a, b) => a.name.localeCompare(b.name)).map(summarize),
  )

  app.get<{ Params: { name: string } }>(
    '/v1/services/:name',
    { schema: { params: nameParam, response: { 200: detail } } },
    async (req, reply) => {
      const e = lookup(registry.catalog(), req.params.name)
      if (!e)
        return reply
          .code(404)
          .send({ error: 'PLX_SERVICE_NOT_FOUND', message: `no service "${req.params.name}"` })
      return { ...summarize(e), endpoints: e.members.map(memberOut) }
    },
  )

  app.get<{ Params: { name: string }; Querystring: { passing?: string; tag?: string; near?: string } }>(
    '/v1/health/service/:name',
    {
      schema: {
        description:
          "The members of a service with their health (Consul's /v1/health/service): ?passing, ?tag=, ?near=<host>|_agent orders them by estimated RTT (Vivaldi)",
        params: nameParam,
        querystring: healthQuery,
        response: { 200: { type: 'array', items: member } },
      },
    },
    async (req) => {
      const catalog = registry.catalog()
      const { passing, tag, near } = req.query
      let members = catalog.services.get(req.params.name)?.members ?? []
      if (flag(passing)) members = members.filter((m) => m.healthy)
      if (tag !== undefined) members = members.filter((m) => m.tags.includes(tag))
      if (near !== undefined)
        members = nearestFirst(members, catalog.nodes, nearPeer(catalog, near, deps.peerId))
      return members.map(memberOut)
    },
  )
}

/** The peer id `?near=` names: `_agent` is the answering host, else a host by name (400 when there is none). */
function nearPeer(catalog: Catalog, near: string, self: string): string {
  if (near === '_agent') return self
  const node = catalog.nodes.find((n) => n.value.name === near)
  if (!node) throw new PlexusError('PLX_API_BAD_REQUEST', `near: no host "${near}" (a host name, or _agent)`)
  return node.peer
}

export const serviceRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const registry = new ServiceRegistry(deps)
  await app.register(serviceReadRoutes, { deps })

  app.put<{ Params: { name: string }; Body: ServiceBody }>(
    '/v1/services/:name',
    { schema: { params: nameParam, body: serviceBodySchema, response: { 200: summary } } },
    async (req) => {
      await registry.define(req.params.name, req.body ?? {})
      return summarize(lookup(registry.catalog(), req.params.name)!)
    },
  )

  app.delete<{ Params: { name: string } }>(
    '/v1/services/:name',
    { schema: { params: nameParam, response: { 204: { type: 'null' } } } },
    async (req, reply) => {
      await registry.undefine(req.params.name)
      return reply.code(204).send()
    },
  )

  app.put<{ Params: { id: string }; Body: RegistrationBody }>(
    '/v1/endpoints/:id/register',
    { schema: { params: idParam, body: registrationBodySchema, response: { 200: registered } } },
    async (req) => registry.register(req.params.id, req.body),
  )

  app.delete<{ Params: { id: string }; Querystring: { service: string; ifname?: string } }>(
    '/v1/endpoints/:id/register',
    {
      schema: {
        params: idParam,
        querystring: {
          type: 'object',
          required: ['service'],
          properties: { service: { type: 'string' }, ifname: { type: 'string' } },
        },
        response: { 204: { type: 'null' } },
      },
    },
    async (req, reply) => {
      await registry.deregister(req.params.id, req.query.service, req.query.ifname)
      return reply.code(204).send()
    },
  )
}
