import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { StatusReply } from '../contract/status.js'
import type { ApiDeps } from '../deps.js'

function memory() {
  const m = process.memoryUsage()
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external }
}

/** what the /v1/status routes read (registered with that prefix) */
export type StatusComponents = Pick<ApiDeps, 'config' | 'peerId' | 'version' | 'startedAt' | 'metrics'>

export const statusRoutes: FastifyPluginAsyncTypebox<StatusComponents> = async (app, deps) => {
  app.get('', { schema: { response: { 200: StatusReply } } }, async () => ({
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
