import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import { lazyCompilers } from './compilers.js'
import type { ApiDeps } from './deps.js'
import { installErrorContract } from './errors.js'
import { registerOpenapi } from './openapi.js'
import { allocRoutes } from './routes/allocs.js'
import { cniRoutes } from './routes/cni.js'
import { cniInvokeRoutes } from './routes/cni-invoke.js'
import { diagRoutes } from './routes/diag.js'
import { dnsRoutes } from './routes/dns.js'
import { endpointRoutes } from './routes/endpoints.js'
import { hostsRoutes } from './routes/hosts.js'
import { jobRoutes } from './routes/jobs.js'
import { kvRoutes } from './routes/kv.js'
import { linkRoutes } from './routes/links.js'
import { metricsRoutes } from './routes/metrics.js'
import { networkRoutes } from './routes/network.js'
import { portRoutes } from './routes/ports.js'
import { routeRoutes } from './routes/routes.js'
import { serviceRoutes } from './routes/services.js'
import { statusRoutes } from './routes/status.js'
import { subnetRoutes } from './routes/subnets.js'
import { uiRoutes } from './routes/ui.js'
import { watchRoutes } from './routes/watch.js'

/**
 * A fastify instance with the API's options and error contract (the operator
 * API and the application API share them).
 */
export function newApiFastify(
  deps: ApiDeps,
  component: string,
  opts: { eagerSchemas?: boolean } = {},
): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component }) as FastifyBaseLogger,
    // Per-request lines would drown the agent log (the CNI plugin calls it per container).
    logController: new LogController({ disableRequestLogging: true }),
    // Unknown body fields are a client bug: report them instead of dropping them.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    // validators and serializers compiled on each route's first request, not at start-up (compilers.ts)
    ...(opts.eagerSchemas ? {} : { schemaController: { compilersFactory: lazyCompilers() } }),
  })
  installErrorContract(app, (err) => deps.logger.error({ err }, `${component} request failed`))
  return app
}

/**
 * The agent API, built apart from listen() so tests use inject().
 * One encapsulated plugin per resource; every route has a JSON schema.
 */
export async function buildApp(
  deps: ApiDeps,
  opts: {
    /** compile every schema at ready() (tests: a broken schema fails there, not on a request) */ eagerSchemas?: boolean
  } = {},
): Promise<FastifyInstance> {
  const app = newApiFastify(deps, 'api', opts)
  await registerOpenapi(app)
  await app.register(statusRoutes, { deps })
  await app.register(metricsRoutes, { metrics: deps.metrics })
  await app.register(kvRoutes, { deps })
  await app.register(watchRoutes, { deps })
  await app.register(hostsRoutes, { deps })
  await app.register(networkRoutes, { deps })
  await app.register(subnetRoutes, { deps })
  await app.register(routeRoutes, { deps })
  await app.register(serviceRoutes, { deps })
  await app.register(dnsRoutes, { deps })
  await app.register(cniRoutes, { deps })
  await app.register(cniInvokeRoutes)
  await app.register(endpointRoutes, { deps })
  if (deps.links) await app.register(linkRoutes, { links: deps.links })
  if (deps.ports) await app.register(portRoutes, { ports: deps.ports })
  if (deps.scheduler) await app.register(jobRoutes, { deps, scheduler: deps.scheduler })
  if (deps.diag) await app.register(diagRoutes, { diag: deps.diag })
  await app.register(allocRoutes, { deps, ...(deps.runner ? { runner: deps.runner } : {}) })
  await app.register(uiRoutes)
  return app
}
