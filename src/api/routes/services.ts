import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import { type Catalog, hostCounts, type Member, type ServiceEntry } from '../../services/catalog.js'
import { nearestFirst } from '../../services/near.js'
import { ServiceRegistry } from '../../services/registry.js'
import { authorize, discoverable } from '../acl-guard.js'
import { ErrorBody, flag, NameParam, NoContent } from '../contract/common.js'
import {
  DeregisterQuery,
  EndpointIdParam,
  HealthQuery,
  HealthReply,
  Registered,
  RegistrationBody,
  ServiceBody,
  ServiceDetail,
  type ServiceMember,
  type ServiceSummary,
  ServiceSummary as ServiceSummarySchema,
  ServicesReply,
} from '../contract/services.js'
import type { ApiDeps } from '../deps.js'

function summarize(e: ServiceEntry): ServiceSummary {
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

function memberOut(m: Member): ServiceMember {
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
    checkStates: m.checkStates,
    ...(m.expiresAt !== undefined ? { expiresAt: new Date(m.expiresAt).toISOString() } : {}),
  }
}

function lookup(catalog: Catalog, name: string): ServiceEntry | undefined {
  return catalog.services.get(name)
}

/** what the catalog's routes read and write (the registry over the store, as this host) */
export type ServicesComponents = Pick<ApiDeps, 'store' | 'peerId'>

/** Reads of the catalog (prefix /v1/services): mounted by the operator API and the application API. */
export const serviceReadRoutes: FastifyPluginAsyncTypebox<ServicesComponents> = async (app, deps) => {
  const registry = new ServiceRegistry(deps)

  app.get('', { schema: { response: { 200: ServicesReply } } }, async (req) => {
    const shown = discoverable(req)
    return [...registry.catalog().services.values()]
      .filter((e) => shown(e.name))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(summarize)
  })

  app.get(
    '/:name',
    { schema: { params: NameParam, response: { 200: ServiceDetail, 404: ErrorBody } } },
    async (req, reply) => {
      authorize(req, { kind: 'service', op: 'discover', name: req.params.name })
      const e = lookup(registry.catalog(), req.params.name)
      if (!e)
        return reply
          .code(404)
          .send({ error: 'PLX_SERVICE_NOT_FOUND', message: `no service "${req.params.name}"` })
      return { ...summarize(e), endpoints: e.members.map(memberOut) }
    },
  )
}

/** The members of a service with their health (prefix /v1/health): mounted by both APIs too. */
export const healthRoutes: FastifyPluginAsyncTypebox<ServicesComponents> = async (app, deps) => {
  const registry = new ServiceRegistry(deps)

  app.get(
    '/service/:name',
    {
      schema: {
        description:
          "The members of a service with their health (Consul's /v1/health/service): ?passing, ?tag=, ?near=<host>|_agent orders them by estimated RTT (Vivaldi)",
        params: NameParam,
        querystring: HealthQuery,
        response: { 200: HealthReply },
      },
    },
    async (req) => {
      authorize(req, { kind: 'service', op: 'discover', name: req.params.name })
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

/** Service definitions (prefix /v1/services): the operator API only. */
export const serviceWriteRoutes: FastifyPluginAsyncTypebox<ServicesComponents> = async (app, deps) => {
  const registry = new ServiceRegistry(deps)

  app.put(
    '/:name',
    { schema: { params: NameParam, body: ServiceBody, response: { 200: ServiceSummarySchema } } },
    async (req) => {
      await registry.define(req.params.name, req.body ?? {})
      return summarize(lookup(registry.catalog(), req.params.name)!)
    },
  )

  app.delete(
    '/:name',
    { schema: { params: NameParam, response: { 204: NoContent } } },
    async (req, reply) => {
      await registry.undefine(req.params.name)
      return reply.code(204).send(null)
    },
  )
}

/** An endpoint of this host joins or leaves a service (prefix /v1/endpoints): the operator API only. */
export const registrationRoutes: FastifyPluginAsyncTypebox<ServicesComponents> = async (app, deps) => {
  const registry = new ServiceRegistry(deps)

  app.put(
    '/:id/register',
    { schema: { params: EndpointIdParam, body: RegistrationBody, response: { 200: Registered } } },
    async (req) => registry.register(req.params.id, req.body),
  )

  app.delete(
    '/:id/register',
    { schema: { params: EndpointIdParam, querystring: DeregisterQuery, response: { 204: NoContent } } },
    async (req, reply) => {
      await registry.deregister(req.params.id, req.query.service, req.query.ifname)
      return reply.code(204).send(null)
    },
  )
}
