import type { FastifyPluginAsync } from 'fastify'
import { PlexusError } from '../../lib/errors.js'
import type { LinkService } from '../../ports/link-service.js'
import { parseLinkSpec } from '../../ports/links.js'

const name = { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$' } as const
const target = {
  type: ['object', 'null'],
  properties: {
    name: { type: 'string' },
    ipv4: { type: 'string' },
    host: { type: 'string' },
    ports: {
      type: 'array',
      items: {
        type: 'object',
        properties: { port: { type: 'integer' }, protocol: { type: 'string' }, name: { type: 'string' } },
      },
    },
  },
} as const
const link = {
  type: 'object',
  required: ['container', 'target', 'alias', 'resolved'],
  properties: { container: name, target: name, alias: name, hostsFile: { type: 'string' }, resolved: target },
} as const
const envBody = { type: 'object', additionalProperties: { type: 'string' } } as const

function notFound(what: string): PlexusError {
  return new PlexusError(
    'PLX_LINK_TARGET_UNKNOWN',
    `no container or healthy service endpoint named "${what}"`,
    {
      status: 404,
    },
  )
}

/** Docker-style links: env for a link, and links whose hosts entries the agent keeps current. */
export const linkRoutes: FastifyPluginAsync<{ links: LinkService }> = async (app, { links }) => {
  app.get<{ Querystring: { container: string; to: string } }>(
    '/v1/links/env',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['container', 'to'],
          additionalProperties: false,
          properties: { container: name, to: { type: 'string', minLength: 1, maxLength: 130 } },
        },
        response: { 200: { type: 'object', required: ['env'], properties: { env: envBody } } },
      },
    },
    async (req) => {
      const spec = parseSpec(req.query.to)
      const env = links.env(req.query.container, spec)
      if (!env) throw notFound(spec.target)
      return { env }
    },
  )

  app.get('/v1/links', { schema: { response: { 200: { type: 'array', items: link } } } }, async () =>
    links.list(),
  )

  app.put<{ Params: { container: string; alias: string }; Body: { target: string; hostsFile?: string } }>(
    '/v1/links/:container/:alias',
    {
      schema: {
        params: { type: 'object', properties: { container: name, alias: name } },
        body: {
          type: 'object',
          required: ['target'],
          additionalProperties: false,
          properties: { target: name, hostsFile: { type: 'string', pattern: '^/', maxLength: 4096 } },
        },
        response: { 200: { type: 'object', properties: { link, env: envBody } } },
      },
    },
    async (req) => {
      const { container, alias } = req.params
      const entry = await links.add({
        container,
        alias,
        target: req.body.target,
        hostsFile: req.body.hostsFile,
      })
      return { link: entry, env: links.env(container, { target: entry.target, alias }) ?? {} }
    },
  )

  app.delete<{ Params: { container: string; alias?: string } }>(
    '/v1/links/:container/:alias?',
    {
      schema: {
        params: { type: 'object', properties: { container: name, alias: name } },
        response: { 200: { type: 'object', properties: { removed: { type: 'integer' } } } },
      },
    },
    async (req) => ({ removed: (await links.remove(req.params.container, req.params.alias)).length }),
  )
}

function parseSpec(spec: string) {
  try {
    return parseLinkSpec(spec)
  } catch (err) {
    throw new PlexusError('PLX_LINK_BAD_SPEC', (err as Error).message, { status: 400 })
  }
}
