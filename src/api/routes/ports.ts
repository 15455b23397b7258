import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { PortService } from '../../ports/publish-service.js'
import {
  PortErrors,
  PortRow,
  PortsQuery,
  PortsReply,
  PublishBody,
  UnpublishParams,
  UnpublishQuery,
  UnpublishReply,
} from '../contract/ports.js'

export const portRoutes: FastifyPluginAsyncTypebox<{ ports: PortService }> = async (app, { ports }) => {
  app.get('', { schema: { querystring: PortsQuery, response: { 200: PortsReply } } }, async (req) =>
    ports.rows().filter((r) => !req.query.local || r.local),
  )

  app.post('', { schema: { body: PublishBody, response: { 200: PortRow, ...PortErrors } } }, async (req) => {
    const { container, protocol = 'tcp', ...rest } = req.body
    return ports.publish(container, { ...rest, protocol })
  })

  app.delete(
    '/:container/:hostPort',
    {
      schema: {
        params: UnpublishParams,
        querystring: UnpublishQuery,
        response: { 200: UnpublishReply, 404: PortErrors[404], 409: PortErrors[409] },
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
