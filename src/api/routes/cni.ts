// The routes the CNI plugin calls (contract: ../contract/cni.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { cniCommandOf, endpointsMetrics } from '../../endpoints/metrics.js'
import { CNI, toCniError } from '../../endpoints/model.js'
import type { EndpointService } from '../../endpoints/service.js'
import { PlexusError } from '../../lib/errors.js'
import {
  AttachReply,
  AttachRequest,
  CheckRequest,
  CniErrors,
  CniOk,
  CniStatus,
  DetachRequest,
  GcReply,
  GcRequest,
} from '../contract/cni.js'
import type { ApiDeps } from '../deps.js'

/** what the /v1/cni routes read (registered with that prefix) */
export type CniComponents = Pick<ApiDeps, 'logger' | 'metrics' | 'endpoints'>

export const cniRoutes: FastifyPluginAsyncTypebox<CniComponents> = async (app, deps) => {
  const metrics = endpointsMetrics(deps.metrics)
  app.addHook('onResponse', async (req, reply) => {
    metrics.cniDuration.observe({ command: cniCommandOf(req.routeOptions.url) }, reply.elapsedTime / 1000)
  })
  app.setErrorHandler((err, req, reply) => {
    const e = (err as { validation?: unknown }).validation
      ? {
          status: 400,
          code: 'PLX_API_BAD_REQUEST',
          cni: { code: CNI.INVALID_CONFIG, msg: `invalid request: ${(err as Error).message}` },
        }
      : toCniError(err)
    if (e.cni.code === CNI.INTERNAL) deps.logger.error({ err }, 'CNI request failed')
    metrics.cniErrors.inc({
      command: cniCommandOf(req.routeOptions.url),
      code: String(e.cni.code),
      reason: e.code,
    })
    return reply.code(e.status).send({ error: e.code, message: e.cni.msg, cni: e.cni })
  })

  // Until the agent has wired the service (or while it starts) the plugin hears "try again later".
  const service = (): EndpointService => {
    if (!deps.endpoints)
      throw new PlexusError('PLX_ENDPOINTS_NOT_READY', 'plexusd is not ready to attach containers yet')
    return deps.endpoints
  }

  app.post(
    '/add',
    { schema: { body: AttachRequest, response: { 200: AttachReply, ...CniErrors } } },
    async (req) => service().attach(req.body),
  )
  app.post(
    '/del',
    { schema: { body: DetachRequest, response: { 200: CniOk, ...CniErrors } } },
    async (req) => {
      await service().detach(req.body)
      return { ok: true }
    },
  )
  app.post(
    '/check',
    { schema: { body: CheckRequest, response: { 200: CniOk, ...CniErrors } } },
    async (req) => {
      await service().check(req.body)
      return { ok: true }
    },
  )
  app.post('/gc', { schema: { body: GcRequest, response: { 200: GcReply, ...CniErrors } } }, async (req) =>
    service().gc(req.body),
  )
  app.get('/status', { schema: { response: { 200: CniStatus, ...CniErrors } } }, async () =>
    service().status(),
  )
}
