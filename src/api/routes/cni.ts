import type { FastifyPluginAsync } from 'fastify'
import { cniCommandOf, endpointsMetrics } from '../../endpoints/metrics.js'
import { type AttachRequest, CNI, type DetachRequest, toCniError } from '../../endpoints/model.js'
import type { CheckRequest, EndpointService, GcRequest } from '../../endpoints/service.js'
import { PlexusError } from '../../lib/errors.js'
import type { ApiDeps } from '../deps.js'

// The routes the CNI plugin calls. Errors carry the CNI error the plugin
// prints (`cni: {code, msg, details}`) next to the usual {error, message}.

const name = { type: 'string', minLength: 1, maxLength: 253 } as const
const containerId = { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$', maxLength: 256 } as const
const ifname = { type: 'string', minLength: 1, maxLength: 15, pattern: '^[^/:\\s]+$' } as const
const netns = { type: 'string', pattern: '^/' } as const
// the plugin's open descriptor of CNI_NETNS (see NetnsHandle in cni/lib/agent-api.ts)
export const netnsHandle = {
  type: 'object',
  additionalProperties: false,
  required: ['pid', 'fd', 'ino'],
  properties: {
    pid: { type: 'integer', minimum: 1 },
    fd: { type: 'integer', minimum: 0 },
    ino: { type: 'integer', minimum: 1 },
  },
} as const
const label = { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' } as const
const proto = { enum: ['tcp', 'udp'] } as const
const strings = { type: 'array', items: { type: 'string' } } as const

const dnsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { nameservers: strings, domain: { type: 'string' }, search: strings, options: strings },
} as const

const addBody = {
  type: 'object',
  additionalProperties: false,
  required: ['containerId', 'ifname', 'netns', 'network', 'labels'],
  properties: {
    containerId,
    ifname,
    netns,
    netnsHandle,
    network: name,
    name,
    namespace: name,
    service: label,
    tags: { type: 'array', items: label },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    ports: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['port', 'protocol'],
        properties: { name: label, port: { type: 'integer', minimum: 1, maximum: 65535 }, protocol: proto },
      },
    },
    published: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['hostPort', 'containerPort', 'protocol'],
        properties: {
          hostIp: { type: 'string' },
          hostPort: { type: 'integer', minimum: 0, maximum: 65535 },
          containerPort: { type: 'integer', minimum: 1, maximum: 65535 },
          protocol: proto,
        },
      },
    },
    ip: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}(/\\d{1,2})?$' },
    mac: { type: 'string', pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' },
    dns: dnsSchema,
  },
} as const

const resultSchema = {
  type: 'object',
  required: ['cniVersion', 'interfaces', 'ips', 'routes', 'dns'],
  properties: {
    cniVersion: { type: 'string' },
    interfaces: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string' },
          mac: { type: 'string' },
          mtu: { type: 'integer' },
          sandbox: { type: 'string' },
        },
      },
    },
    ips: {
      type: 'array',
      items: {
        type: 'object',
        required: ['address'],
        properties: {
          address: { type: 'string' },
          gateway: { type: 'string' },
          interface: { type: 'integer' },
        },
      },
    },
    routes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['dst'],
        properties: { dst: { type: 'string' }, gw: { type: 'string' } },
      },
    },
    dns: dnsSchema,
  },
} as const

const keyBody = {
  type: 'object',
  required: ['containerId', 'ifname'],
  properties: { containerId, ifname },
} as const

const delBody = {
  ...keyBody,
  additionalProperties: false,
  properties: { ...keyBody.properties, netns: { type: 'string' } },
} as const

const checkBody = {
  type: 'object',
  additionalProperties: false,
  required: ['containerId', 'ifname', 'netns'],
  properties: {
    ...keyBody.properties,
    netns,
    netnsHandle,
    // the runtime's cached result, already validated by the plugin; only its ips are compared
    prevResult: { type: 'object' },
  },
} as const

const gcBody = {
  type: 'object',
  additionalProperties: false,
  required: ['network', 'validAttachments'],
  properties: {
    network: name,
    validAttachments: { type: 'array', items: { ...keyBody, additionalProperties: false } },
  },
} as const

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    cni: {
      type: 'object',
      required: ['code', 'msg'],
      properties: { code: { type: 'integer' }, msg: { type: 'string' }, details: { type: 'string' } },
    },
  },
} as const

const errors = { 400: errorSchema, 500: errorSchema, 503: errorSchema } as const
const ok = { type: 'object', properties: { ok: { type: 'boolean' } } } as const

export const cniRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const metrics = endpointsMetrics(deps.metrics)
  app.addHook('onResponse', async (req, reply) => {
    metrics.cniDuration.observe({ command: cniCommandOf(req.routeOptions.url) }, reply.elapsedTime / 1000)
  })
  app.setErrorHandler((err, req, reply) => {
    const e = (err as { validation?: unknown }).validation
      ? {
          status: 400,
          code: 'PLX_API_BAD_REQUEST',
          cni: { code: CNI.INVALID_CONFIG, msg: `invalid request: ${(err as Error).message}` },
        }
      : toCniError(err)
    if (e.cni.code === CNI.INTERNAL) deps.logger.error({ err }, 'CNI request failed')
    metrics.cniErrors.inc({
      command: cniCommandOf(req.routeOptions.url),
      code: String(e.cni.code),
      reason: e.code,
    })
    return reply.code(e.status).send({ error: e.code, message: e.cni.msg, cni: e.cni })
  })

  // Until the agent has wired the service (or while it starts) the plugin hears "try again later".
  const service = (): EndpointService => {
    if (!deps.endpoints)
      throw new PlexusError('PLX_ENDPOINTS_NOT_READY', 'plexusd is not ready to attach containers yet')
    return deps.endpoints
  }

  app.post<{ Body: AttachRequest }>(
    '/v1/cni/add',
    { schema: { body: addBody, response: { 200: resultSchema, ...errors } } },
    async (req) => service().attach(req.body),
  )
  app.post<{ Body: DetachRequest }>(
    '/v1/cni/del',
    { schema: { body: delBody, response: { 200: ok, ...errors } } },
    async (req) => {
      await service().detach(req.body)
      return { ok: true }
    },
  )
  app.post<{ Body: CheckRequest }>(
    '/v1/cni/check',
    { schema: { body: checkBody, response: { 200: ok, ...errors } } },
    async (req) => {
      await service().check(req.body)
      return { ok: true }
    },
  )
  app.post<{ Body: GcRequest }>(
    '/v1/cni/gc',
    {
      schema: {
        body: gcBody,
        response: {
          200: { type: 'object', properties: { released: gcBody.properties.validAttachments } },
          ...errors,
        },
      },
    },
    async (req) => service().gc(req.body),
  )
  app.get(
    '/v1/cni/status',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: {
              subnet: { type: 'string' },
              gateway: { type: 'string' },
              mtu: { type: 'integer' },
              endpoints: { type: 'integer' },
            },
          },
          ...errors,
        },
      },
    },
    async () => service().status(),
  )
}
