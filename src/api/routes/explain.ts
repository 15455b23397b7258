import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Explainable } from '../../lib/explain.js'
import { ExplainQuery, ExplainReply } from '../contract/explain.js'

/** what the /v1/explain route reads (registered with that prefix): the reconcilers that explain themselves */
export interface ExplainComponents {
  datapath?: Explainable | undefined
  dns?: Explainable | undefined
}

/** Which store records produced a kernel object (datapath) or a zone entry (DNS) on this host. */
export const explainRoutes: FastifyPluginAsyncTypebox<ExplainComponents> = async (app, { datapath, dns }) => {
  app.get('', { schema: { querystring: ExplainQuery, response: { 200: ExplainReply } } }, async (req) => {
    const { subject } = req.query
    const by = (name: 'datapath' | 'dns', r?: Explainable) =>
      (r?.explain(subject) ?? []).map((e) => ({ by: name, ...e }))
    return { subject, explanations: [...by('datapath', datapath), ...by('dns', dns)] }
  })
}
