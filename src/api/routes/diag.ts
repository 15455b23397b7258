import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DoctorQuery, DoctorReply, TraceReply, TraceRequest } from '../contract/diag.js'
import type { ApiDeps } from '../deps.js'

/** plexctl doctor (and trace): read-only diagnosis of this or another host (src/diag) */
export const diagRoutes: FastifyPluginAsyncTypebox<{ diag: NonNullable<ApiDeps['diag']> }> = async (
  app,
  { diag },
) => {
  app.get('/doctor', { schema: { querystring: DoctorQuery, response: { 200: DoctorReply } } }, async (req) =>
    diag.doctor(req.query.host),
  )
  app.post('/trace', { schema: { body: TraceRequest, response: { 200: TraceReply } } }, async (req) =>
    diag.trace(req.body),
  )
}
