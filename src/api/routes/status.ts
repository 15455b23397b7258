import type { FastifyPluginAsync } from 'fastify'
import type { ApiDeps } from '../deps.js'

const statusSchema = {
  type: 'object',
  required: ['name', 'peerId', 'version', 'pid', 'startedAt', 'uptimeSeconds', 'memory', 'metrics'],
  properties: {
    name: { type: 'string' },
    peerId: { type: 'string' },
    version: { type: 'string' },
    pid: { type: 'integer' },
    startedAt: { type: 'string' },
    uptimeSeconds: { type: 'number' },
    /** the agent process: resident set, V8 heap in use, memory outside the heap (buffers, addons) */
    memory: {
      type: 'object',
      required: ['rssBytes', 'heapUsedBytes', 'externalBytes'],
      properties: {
        rssBytes: { type: 'integer' },
        heapUsedBytes: { type: 'integer' },
        externalBytes: { type: 'integer' },
      },
    },
    /** the operator's figures: each plexus_ counter and gauge series (histograms: _count, _sum), as GET /metrics names it */
    metrics: { type: 'object', additionalProperties: { type: 'number' } },
  },
} as const

function memory() {
  const m = process.memoryUsage()
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external }
}

export const statusRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get('/v1/status', { schema: { response: { 200: statusSchema } } }, async () => ({
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
