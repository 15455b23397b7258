import { type Static, Type } from '@sinclair/typebox'
import { StringEnum } from '../../lib/schema.js'

const TYPES = ['A', 'AAAA', 'SRV', 'PTR', 'SOA', 'NS', 'ANY', 'TXT', 'MX', 'CNAME', 'CAA'] as const

/** GET /v1/dns/query?name=&type= (type in either case, A by default) */
export const DnsQuery = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 253 }),
  type: Type.Optional(StringEnum([...TYPES, ...TYPES.map((t) => t.toLowerCase())])),
})
export type DnsQuery = Static<typeof DnsQuery>

/** a resource record as dns-packet decodes it: name and type, the rest by type */
export const DnsRecord = Type.Object(
  {
    name: Type.String(),
    type: Type.String(),
    ttl: Type.Optional(Type.Number()),
    data: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
)
export type DnsRecord = Static<typeof DnsRecord>

/** the answer of this host's DNS server, as a client would see it */
export const DnsAnswer = Type.Object({
  server: Type.String(),
  rcode: Type.String(),
  flags: Type.Array(Type.String()),
  rttMs: Type.Number(),
  answers: Type.Array(DnsRecord),
  authorities: Type.Array(DnsRecord),
  additionals: Type.Array(DnsRecord),
})
export type DnsAnswer = Static<typeof DnsAnswer>

/** GET /v1/dns: the server's own status (listeners, zone, upstreams, counters) */
export const DnsStatus = Type.Object({}, { additionalProperties: true })
