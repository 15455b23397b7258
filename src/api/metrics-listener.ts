import Fastify, { type FastifyBaseLogger, LogController } from 'fastify'
import { parseUpstream } from '../dns/forward/resolvconf.js'
import { PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import { metricsRoutes } from './routes/metrics.js'

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

/** "127.0.0.1:9464", "[::1]:9464" → host and port; PLX_CONFIG_INVALID otherwise (the port is required). */
export function parseMetricsListen(s: string): { host: string; port: number } {
  const hp = /^(?:[\d.]+|\[[^\]]+\]):\d+$/.test(s) ? parseUpstream(s) : undefined
  if (!hp)
    throw new PlexusError(
      'PLX_CONFIG_INVALID',
      `metrics.listen: "${s}" is not "ip:port" or "[ipv6]:port" with a port from 1 to 65535`,
    )
  return hp
}

/**
 * Serves `GET /metrics` alone on TCP: the rest of the API stays on the unix
 * sockets (mode 0600), since it can attach containers. Metrics carry no
 * secret, but bind it to an address only the scraper reaches.
 */
export async function listenMetrics(
  metrics: Metrics,
  listen: string,
  logger: Logger,
): Promise<() => Promise<void>> {
  const { host, port } = parseMetricsListen(listen)
  const app = Fastify({
    loggerInstance: logger.child({ component: 'metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  })
  await app.register(metricsRoutes, { metrics })
  await app.listen({ host, port })
  logger.info({ listen }, `serving /metrics on ${listen}`)
  return () => app.close()
}
