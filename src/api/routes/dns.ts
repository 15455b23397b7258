import type { FastifyPluginAsync } from 'fastify'
import { PlexusError } from '../../lib/errors.js'
import type { ApiDeps } from '../deps.js'

const record = { type: 'object', additionalProperties: true } as const
const answerSchema = {
  type: 'object',
  required: ['server', 'rcode', 'flags', 'rttMs', 'answers', 'authorities', 'additionals'],
  properties: {
    server: { type: 'string' },
    rcode: { type: 'string' },
    flags: { type: 'array', items: { type: 'string' } },
    rttMs: { type: 'number' },
    answers: { type: 'array', items: record },
    authorities: { type: 'array', items: record },
    additionals: { type: 'array', items: record },
  },
} as const
const TYPES = ['A', 'AAAA', 'SRV', 'PTR', 'SOA', 'NS', 'ANY', 'TXT', 'MX', 'CNAME', 'CAA']

export const dnsRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  const dns = () => {
    if (!deps.dns)
      throw new PlexusError('PLX_DNS_DISABLED', 'the DNS server is disabled on this host', { status: 503 })
    return deps.dns
  }

  app.get<{ Querystring: { name: string; type?: string } }>(
    '/v1/dns/query',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 253 },
            type: { type: 'string', enum: [...TYPES, ...TYPES.map((t) => t.toLowerCase())] },
          },
        },
        response: { 200: answerSchema },
      },
    },
    async (req) => dns().query(req.query.name, (req.query.type ?? 'A').toUpperCase()),
  )

  app.get(
    '/v1/dns',
    { schema: { response: { 200: { type: 'object', additionalProperties: true } } } },
    async () => dns().status(),
  )
}
