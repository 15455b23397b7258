import { createServer } from 'node:net'
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify'
import { ConnectionGate } from '../lib/conn-gate.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import { apiMetrics } from './metrics.js'
import { metricsRoutes } from './routes/metrics.js'
import { type ApiLimits, gateLimits, parseListen, serveThroughGate } from './server.js'

/** The `metrics` section of the agent config. */
export interface MetricsConfig {
  /**
   * "ip:port" or "[ipv6]:port" to serve `GET /metrics` on over TCP (a
   * Prometheus scrape target); absent: only the API's unix sockets serve it
   */
  listen?: string
}

export const metricsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { listen: { type: 'string', minLength: 3, maxLength: 53 } },
} as const

/**
 * Serves `GET /metrics` alone on TCP: the rest of the API stays on the unix
 * sockets (mode 0600), since it can attach containers. Metrics carry no
 * secret, but bind it to an address only the scraper reaches. The API's
 * connection bounds apply, per remote address.
 */
export async function listenMetrics(
  metrics: Metrics,
  listen: string,
  logger: Logger,
  limits: ApiLimits,
): Promise<() => Promise<void>> {
  const { host, port } = parseListen(listen)
  const app = Fastify({
    loggerInstance: logger.child({ component: 'metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  })
  await app.register(metricsRoutes, { metrics })
  await app.ready()
  const { connections } = apiMetrics(metrics)
  const gate = new ConnectionGate(gateLimits(limits), (outcome) =>
    connections.inc({ listener: 'metrics', outcome }),
  )
  const server = createServer()
  serveThroughGate(app, server, gate, (s) => s.remoteAddress ?? '')
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => resolve())
  })
  logger.info({ listen }, `serving /metrics on ${listen}`)
  return async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    gate.destroyAll()
    await closed
    await app.close()
  }
}
