// The application API: what containers reach on their host's bridge gateway
// (agent.plexus.internal, PLEXUS_HTTP_ADDR). A separate fastify instance with
// only the routes an application needs (KV, watch, catalog and health, its own
// registration), so no operator route (CNI, jobs, networks) is ever reachable
// from a container. Who calls is the peer address: it must be one of this
// host's endpoints (403 otherwise); what it may do is its ACL (acl/ records,
// src/services/acl.ts), checked by each route through acl-guard.ts.
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import { PlexusError } from '../lib/errors.js'
import { CallerView, plainAddress } from '../services/caller.js'
import { setAcl } from './acl-guard.js'
import { newApiFastify } from './app.js'
import type { ApiDeps } from './deps.js'
import { apiMetrics } from './metrics.js'
import { agentRoutes, setCaller } from './routes/agent.js'
import { kvRoutes } from './routes/kv.js'
import { healthRoutes, serviceReadRoutes } from './routes/services.js'
import { watchRoutes } from './routes/watch.js'

/** requests one address may make each second (`api.appRequestsPerSecond`) */
export const DEFAULT_APP_REQUESTS_PER_SECOND = 100

export async function buildAppApi(
  deps: ApiDeps,
  opts: { eagerSchemas?: boolean; requestsPerSecond?: number } = {},
): Promise<FastifyInstance> {
  const app = newApiFastify(deps, 'app-api', opts)
  const { appCallers, aclDenials, appRateLimited } = apiMetrics(deps.metrics)
  // first of all hooks: a flood from one container (or anything else) is refused before any work,
  // so it cannot take the agent from the others (@fastify/rate-limit: src/api/README.md says why)
  await app.register(rateLimit, {
    max: opts.requestsPerSecond ?? DEFAULT_APP_REQUESTS_PER_SECOND,
    timeWindow: 1000,
    keyGenerator: (req) => plainAddress(req.socket.remoteAddress ?? ''),
    onExceeded: () => appRateLimited.inc(),
    errorResponseBuilder: (_req, ctx) =>
      new PlexusError(
        'PLX_API_RATE_LIMITED',
        `more than ${ctx.max} requests a second from this address; retry in ${ctx.after}`,
        { status: 429 },
      ),
  })
  // before routing and body parsing: an unknown caller learns nothing, not even which routes exist
  const callers = new CallerView(deps.store, deps.peerId)
  app.addHook('onRequest', async (req, reply) => {
    const ep = callers.caller(req.socket.remoteAddress ?? '')
    if (!ep) {
      appCallers.inc({ outcome: 'unknown' })
      return reply.code(403).send({
        error: 'PLX_API_UNKNOWN_CALLER',
        message: `${req.socket.remoteAddress ?? 'this address'} is not a container endpoint of this host`,
      })
    }
    appCallers.inc({ outcome: 'endpoint' })
    setCaller(req, ep)
    setAcl(req, callers.acl(ep), (kind) => aclDenials.inc({ kind }))
  })
  const { store, peerId, metrics } = deps
  await app.register(kvRoutes, { prefix: '/v1/kv', store, members: deps.members, metrics })
  await app.register(watchRoutes, { prefix: '/v1/watch', store, metrics, shutdown: deps.shutdown })
  await app.register(serviceReadRoutes, { prefix: '/v1/services', store, peerId })
  await app.register(healthRoutes, { prefix: '/v1/health', store, peerId })
  await app.register(agentRoutes, { prefix: '/v1/agent', store, peerId })
  return app
}
