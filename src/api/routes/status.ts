import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { StatusReply } from '../contract/status.js'
import type { ApiDeps } from '../deps.js'

function memory() {
  const m = process.memoryUsage()
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external }
}

export const statusRoutes: FastifyPluginAsyncTypebox<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get('/v1/status', { schema: { response: { 200: StatusReply } } }, async () => ({
    name: deps.config.name,
    peerId: deps.peerId,
    version: deps.version,
    pid: process.pid,
    startedAt: deps.startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - deps.startedAt.getTime()) / 100) / 10,
    memory: memory(),
    metrics: await deps.metrics.figures(),
  }))
}
