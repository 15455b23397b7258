import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import { DnsAnswer, DnsQuery, DnsStatus } from '../contract/dns.js'
import type { ApiDeps } from '../deps.js'

/** what the /v1/dns routes read (registered with that prefix) */
export type DnsComponents = Pick<ApiDeps, 'dns'>

export const dnsRoutes: FastifyPluginAsyncTypebox<DnsComponents> = async (app, deps) => {
  const dns = () => {
    if (!deps.dns)
      throw new PlexusError('PLX_DNS_DISABLED', 'the DNS server is disabled on this host', { status: 503 })
    return deps.dns
  }

  app.get('/query', { schema: { querystring: DnsQuery, response: { 200: DnsAnswer } } }, async (req) =>
    dns().query(req.query.name, (req.query.type ?? 'A').toUpperCase()),
  )

  app.get('', { schema: { response: { 200: DnsStatus } } }, async () => dns().status())
}
