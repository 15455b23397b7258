import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import type { LinkService } from '../../ports/link-service.js'
import { parseLinkSpec } from '../../ports/links.js'
import {
  LinkAddReply,
  LinkBody,
  LinkDeleteParams,
  LinkEnvQuery,
  LinkEnvReply,
  LinkParams,
  LinkRemoveReply,
  LinksReply,
} from '../contract/links.js'

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
export const linkRoutes: FastifyPluginAsyncTypebox<{ links: LinkService }> = async (app, { links }) => {
  app.get('/env', { schema: { querystring: LinkEnvQuery, response: { 200: LinkEnvReply } } }, async (req) => {
    const spec = parseSpec(req.query.to)
    const env = links.env(req.query.container, spec)
    if (!env) throw notFound(spec.target)
    return { env }
  })

  app.get('', { schema: { response: { 200: LinksReply } } }, async () => links.list())

  app.put(
    '/:container/:alias',
    { schema: { params: LinkParams, body: LinkBody, response: { 200: LinkAddReply } } },
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

  app.delete(
    '/:container/:alias?',
    { schema: { params: LinkDeleteParams, response: { 200: LinkRemoveReply } } },
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
