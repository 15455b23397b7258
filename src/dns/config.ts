// The `dns` section of the agent config (schema, defaults); src/agent/config.ts embeds it.

export interface DnsConfig {
  enabled: boolean
  /** listen on the bridge gateway address (first address of this host's subnet) once the lease is known */
  listenGateway: boolean
  /** further addresses to listen on (e.g. a host address) */
  listen: string[]
  port: number
  /** TTL of zone answers, seconds */
  ttl: number
  /** upstream resolvers ("ip", "ip:port", "[v6]:port"); empty: the nameservers of resolvConf (at most 3) */
  upstreams: string[]
  resolvConf: string
  upstreamTimeoutMs: number
  /** forwarded queries waiting at once; beyond this the answer is SERVFAIL */
  maxInFlight: number
  /** forwarding cache entries (0 disables) */
  cacheSize: number
  /** longest time anything stays in the forwarding cache, seconds */
  cacheMaxTtl: number
  /** TCP connections open at once, all clients together; more are closed at once */
  tcpMaxConnections: number
  /** TCP connections one client address may hold at once, so one container cannot take them all */
  tcpMaxPerClient: number
  /**
   * time a TCP client has for each whole query (from the connect or the
   * previous query): a drip of bytes does not extend it, so slow-drip and
   * idle connections are both closed after it
   */
  tcpMessageTimeoutMs: number
}

export const dnsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean' },
    listenGateway: { type: 'boolean' },
    listen: { type: 'array', items: { type: 'string', minLength: 2, maxLength: 45 } },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    ttl: { type: 'integer', minimum: 0, maximum: 86400 },
    upstreams: { type: 'array', maxItems: 3, items: { type: 'string', minLength: 2, maxLength: 53 } },
    resolvConf: { type: 'string', minLength: 1 },
    upstreamTimeoutMs: { type: 'integer', minimum: 50, maximum: 60000 },
    maxInFlight: { type: 'integer', minimum: 1, maximum: 1000000 },
    cacheSize: { type: 'integer', minimum: 0, maximum: 10000000 },
    cacheMaxTtl: { type: 'integer', minimum: 1, maximum: 604800 },
    tcpMaxConnections: { type: 'integer', minimum: 1, maximum: 65536 },
    tcpMaxPerClient: { type: 'integer', minimum: 1, maximum: 65536 },
    tcpMessageTimeoutMs: { type: 'integer', minimum: 100, maximum: 120000 },
  },
} as const

export function defaultDnsConfig(): DnsConfig {
  return {
    enabled: true,
    listenGateway: true,
    listen: [],
    port: 53,
    ttl: 5,
    upstreams: [],
    resolvConf: '/etc/resolv.conf',
    upstreamTimeoutMs: 2000,
    maxInFlight: 1024,
    cacheSize: 10000,
    cacheMaxTtl: 300,
    tcpMaxConnections: 256,
    tcpMaxPerClient: 16,
    tcpMessageTimeoutMs: 5000,
  }
}
