// Serves the application API (app-api.ts) on this host's bridge gateway
// address, the one address every local container reaches without a route or
// NAT, and that no other host's container owns.
import { createServer, type Server } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { leaseGateway } from '../ipam/leases.js'
import { ConnectionGate } from '../lib/conn-gate.js'
import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { LEASE_PREFIX, type ReadableStore } from '../store/types.js'
import { apiMetrics } from './metrics.js'
import { type ApiLimits, gateLimits, serveThroughGate } from './server.js'

/**
 * The application API's port on the gateway. Not Consul's 8500: the routes
 * look like Consul's but the bodies are ours, and a Consul client pointed at
 * it would misread them; next to the cluster's 7373, so one firewall rule
 * range names Plexus.
 */
export const DEFAULT_APP_PORT = 7374

/** how often a bind that failed (the gateway address not yet on the bridge) is retried */
const BIND_RETRY_MS = 1000

export interface AppListenerComponents {
  store: ReadableStore
  peerId: string
  logger: Logger
  metrics: Metrics
  config: { api: ApiLimits & { appPort: number } }
}

/**
 * Binds `app` to gateway:appPort once the bridge has that address (the
 * datapath adds it after the lease: a failed bind is retried every second),
 * and re-binds when this host's lease, hence its gateway, changes.
 */
export class AppListener implements Startable {
  private server?: Server
  private bound?: string
  private readonly gate: ConnectionGate
  private retry?: NodeJS.Timeout
  private unwatch?: () => void
  private pass: Promise<void> = Promise.resolve()
  private stopped = false

  constructor(
    private readonly c: AppListenerComponents,
    private readonly app: FastifyInstance,
  ) {
    const { connections } = apiMetrics(c.metrics)
    this.gate = new ConnectionGate(gateLimits(c.config.api), (outcome) =>
      connections.inc({ listener: 'app', outcome }),
    )
  }

  /** "ip:port" the API is served on now, or undefined before the gateway exists */
  address(): string | undefined {
    return this.bound ? `${this.bound}:${this.c.config.api.appPort}` : undefined
  }

  async start(): Promise<void> {
    await this.app.ready()
    this.unwatch = this.c.store.watch(`${LEASE_PREFIX}${this.c.peerId}`, () => void this.reconcile())
    await this.reconcile()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.unwatch?.()
    clearTimeout(this.retry)
    await this.pass
    await this.close()
    await this.app.close()
  }

  /** one pass at a time, so a lease event during a bind does not bind twice */
  private reconcile(): Promise<void> {
    const next = this.pass.then(() => this.reconcileOnce())
    this.pass = next.catch(() => undefined)
    return next
  }

  private async reconcileOnce(): Promise<void> {
    clearTimeout(this.retry)
    if (this.stopped) return
    const want = leaseGateway(this.c.store, this.c.peerId)
    if (want === this.bound && this.server) return
    await this.close()
    if (!want) return
    const server = createServer()
    serveThroughGate(this.app, server, this.gate, (s) => s.remoteAddress ?? '')
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: want, port: this.c.config.api.appPort }, () => resolve())
      })
    } catch (err) {
      this.c.logger.debug({ address: want, err: errorMessage(err) }, 'app API: bind failed, will retry')
      this.retry = setTimeout(() => void this.reconcile(), BIND_RETRY_MS)
      this.retry.unref()
      return
    }
    this.server = server
    this.bound = want
    this.c.logger.info({ listen: this.address() }, `application API on ${this.address()}`)
  }

  private async close(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    this.bound = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    // on a re-bind the old address's connections go too: their container may now belong to another host
    this.gate.destroyAll()
    await closed
  }
}
