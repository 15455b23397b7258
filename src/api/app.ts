import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import { lazyCompilers } from './compilers.js'
import type { ApiDeps } from './deps.js'
import { installErrorContract } from './errors.js'
import { registerOpenapi } from './openapi.js'
import { aclRoutes } from './routes/acl.js'
import { allocRoutes } from './routes/allocs.js'
import { cniRoutes } from './routes/cni.js'
import { cniInvokeRoutes } from './routes/cni-invoke.js'
import { diagRoutes } from './routes/diag.js'
import { dnsRoutes } from './routes/dns.js'
import { endpointRoutes } from './routes/endpoints.js'
import { explainRoutes } from './routes/explain.js'
import { hostsRoutes } from './routes/hosts.js'
import { jobRoutes } from './routes/jobs.js'
import { kvRoutes } from './routes/kv.js'
import { linkRoutes } from './routes/links.js'
import { metricsRoutes } from './routes/metrics.js'
import { networkRoutes } from './routes/network.js'
import { networksRoutes } from './routes/networks.js'
import { portRoutes } from './routes/ports.js'
import { routeRoutes } from './routes/routes.js'
import { healthRoutes, registrationRoutes, serviceReadRoutes, serviceWriteRoutes } from './routes/services.js'
import { statusRoutes } from './routes/status.js'
import { subnetRoutes } from './routes/subnets.js'
import { trafficRoutes } from './routes/traffic.js'
import { uiRoutes } from './routes/ui.js'
import { watchRoutes } from './routes/watch.js'
import { installTokenAuth } from './tcp-listener.js'

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
 * One encapsulated plugin per resource, registered under its prefix with only
 * the components it reads; every route's schema is in ./contract/.
 */
export async function buildApp(
  deps: ApiDeps,
  opts: {
    /** compile every schema at ready() (tests: a broken schema fails there, not on a request) */ eagerSchemas?: boolean
  } = {},
): Promise<FastifyInstance> {
  const app = newApiFastify(deps, 'api', opts)
  installTokenAuth(app, deps)
  await registerOpenapi(app)
  // one plugin per resource under its prefix, each given only the components it reads
  const { store, peerId, metrics, shutdown, lease } = deps
  const catalog = { store, peerId }
  await app.register(statusRoutes, {
    prefix: '/v1/status',
    config: deps.config,
    peerId,
    version: deps.version,
    startedAt: deps.startedAt,
    metrics,
  })
  await app.register(metricsRoutes, { metrics })
  await app.register(kvRoutes, { prefix: '/v1/kv', store, members: deps.members, metrics })
  await app.register(aclRoutes, { prefix: '/v1/acl', store })
  await app.register(watchRoutes, { prefix: '/v1/watch', store, metrics, shutdown })
  await app.register(hostsRoutes, { prefix: '/v1/hosts', store, members: deps.members })
  await app.register(networkRoutes, { prefix: '/v1/network', store, lease })
  await app.register(networksRoutes, { prefix: '/v1/networks', store, networks: deps.networks })
  await app.register(subnetRoutes, {
    prefix: '/v1/subnets',
    store,
    peerId,
    startedAt: deps.startedAt,
    lease,
    addresses: deps.addresses,
  })
  await app.register(trafficRoutes, { prefix: '/v1/traffic', store })
  await app.register(routeRoutes, { prefix: '/v1/routes', datapath: deps.datapath })
  await app.register(explainRoutes, { prefix: '/v1/explain', datapath: deps.datapath, dns: deps.dns })
  await app.register(serviceReadRoutes, { prefix: '/v1/services', ...catalog })
  await app.register(serviceWriteRoutes, { prefix: '/v1/services', ...catalog })
  await app.register(healthRoutes, { prefix: '/v1/health', ...catalog })
  await app.register(registrationRoutes, { prefix: '/v1/endpoints', ...catalog })
  await app.register(dnsRoutes, { prefix: '/v1/dns', dns: deps.dns })
  await app.register(cniRoutes, {
    prefix: '/v1/cni',
    logger: deps.logger,
    metrics,
    endpoints: deps.endpoints,
  })
  await app.register(cniInvokeRoutes, { prefix: '/v1/cni' })
  await app.register(endpointRoutes, { prefix: '/v1/endpoints', store, lease, endpoints: deps.endpoints })
  if (deps.links) await app.register(linkRoutes, { prefix: '/v1/links', links: deps.links })
  if (deps.ports) await app.register(portRoutes, { prefix: '/v1/ports', ports: deps.ports })
  if (deps.scheduler)
    await app.register(jobRoutes, { prefix: '/v1/jobs', store, peerId, scheduler: deps.scheduler })
  if (deps.diag) await app.register(diagRoutes, { prefix: '/v1', diag: deps.diag })
  await app.register(allocRoutes, { prefix: '/v1/allocs', store, shutdown, runner: deps.runner })
  await app.register(uiRoutes)
  return app
}
