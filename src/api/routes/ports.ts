import type { FastifyPluginAsync } from 'fastify'
import type { PortService } from '../../ports/publish-service.js'

// Published ports: this host's (publish, unpublish, list) and the cluster's.
// Values are checked by src/ports (one place for the reasons a mapping is
// refused); the schemas here only pin the types.

const container = { type: 'string', minLength: 1, maxLength: 256 } as const
const port = { type: 'integer' } as const
const protocol = { type: 'string', minLength: 1, maxLength: 16 } as const
const hostIp = { type: 'string', maxLength: 64 } as const
const error = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const

const row = {
  type: 'object',
  required: [
    'host',
    'hostAddress',
    'hostPort',
    'protocol',
    'container',
    'containerId',
    'containerIp',
    'containerPort',
    'local',
  ],
  properties: {
    host: { type: 'string' },
    hostAddress: { type: 'string' },
    hostPort: { type: 'integer' },
    protocol: { type: 'string' },
    container: { type: 'string' },
    containerId: { type: 'string' },
    containerIp: { type: 'string' },
    containerPort: { type: 'integer' },
    local: { type: 'boolean' },
  },
} as const

const published = {
  type: 'object',
  required: ['hostPort', 'containerPort', 'protocol'],
  properties: { hostIp, hostPort: port, containerPort: port, protocol },
} as const

export const portRoutes: FastifyPluginAsync<{ ports: PortService }> = async (app, { ports }) => {
  app.get<{ Querystring: { local?: boolean } }>(
    '/v1/ports',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { local: { type: 'boolean' } },
        },
        response: { 200: { type: 'array', items: row } },
      },
    },
    async (req) => ports.rows().filter((r) => !req.query.local || r.local),
  )

  app.post<{
    Body: { container: string; hostPort: number; containerPort: number; protocol?: string; hostIp?: string }
  }>(
    '/v1/ports',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['container', 'hostPort', 'containerPort'],
          properties: { container, hostPort: port, containerPort: port, protocol, hostIp },
        },
        response: { 200: row, 400: error, 404: error, 409: error },
      },
    },
    async (req) => {
      const { container, protocol = 'tcp', ...rest } = req.body
      return ports.publish(container, { ...rest, protocol })
    },
  )

  app.delete<{
    Params: { container: string; hostPort: number }
    Querystring: { protocol?: string; hostIp?: string }
  }>(
    '/v1/ports/:container/:hostPort',
    {
      schema: {
        params: {
          type: 'object',
          required: ['container', 'hostPort'],
          properties: { container, hostPort: port },
        },
        querystring: { type: 'object', additionalProperties: false, properties: { protocol, hostIp } },
        response: {
          200: {
            type: 'object',
            required: ['removed'],
            properties: { removed: { type: 'array', items: published } },
          },
          404: error,
          409: error,
        },
      },
    },
    async (req) => {
      const { protocol = 'tcp', hostIp } = req.query
      const removed = await ports.unpublish(req.params.container, {
        hostPort: req.params.hostPort,
        protocol,
        ...(hostIp ? { hostIp } : {}),
      })
      return { removed }
    },
  )
}
