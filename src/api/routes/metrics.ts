import type { FastifyPluginAsync } from 'fastify'
import type { Metrics } from '../../lib/metrics.js'

/**
 * `GET /metrics`: every metric in the Prometheus text format (exposition
 * format 0.0.4), for Prometheus, `promtool check metrics` or curl. The same
 * route serves the API sockets and, when `metrics.listen` is set, the TCP
 * listener (src/api/metrics-listener.ts).
 */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()))
}
