// The operator API over TCP (`api.listen`, off by default), for tools on other
// machines: every request carries a token (`Authorization: Bearer`), and when
// `api.tls` is set only TLS is spoken, so plain HTTP fails its handshake. A
// token has what the policies it names grant (src/services/acl.ts); managing
// policies and tokens stays on the unix socket, so no token can mint a
// stronger one. The unix socket is unchanged: root's, with full access.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ConnectionGate, type GateEvent } from '../lib/conn-gate.js'
import { PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import { aclForToken, aclRecords } from '../services/acl.js'
import { aclTokenCodec } from '../store/codecs.js'
import { ACL_TOKEN_PREFIX, type ReadableStore } from '../store/types.js'
import { authorize, setAcl } from './acl-guard.js'
import { apiMetrics } from './metrics.js'
import { type ApiLimits, gateLimits, parseListen, serveThroughGate } from './server.js'

/** `api.listen` and `api.tls` of the agent config (docs/config.md) */
export interface TcpApiConfig {
  /** "ip:port" or "[ipv6]:port" */
  listen?: string
  /** PEM files (`plexctl tls init` makes them); when set, TLS is required */
  tls?: { certFile: string; keyFile: string }
}

export const tcpApiConfigSchema = {
  listen: { type: 'string', minLength: 3, maxLength: 53 },
  tls: {
    type: 'object',
    additionalProperties: false,
    required: ['certFile', 'keyFile'],
    properties: { certFile: { type: 'string', minLength: 1 }, keyFile: { type: 'string', minLength: 1 } },
  },
} as const

/** the sockets this listener handed to the app: requests on them need a token */
const remote = new WeakSet<Socket>()

/** a token's secret: `plx_` and 43 base64url characters (32 random bytes) */
export const TOKEN_PATTERN = /^plx_[A-Za-z0-9_-]{43}$/

/** where a token's record lives: the secret itself is never stored, only its hash */
export function tokenKey(secret: string): string {
  return `${ACL_TOKEN_PREFIX}${createHash('sha256').update(secret).digest('hex')}`
}

/** Routes whose handlers ask the ACL themselves (KV, watch, catalog and health reads); the rest are operator actions. */
function guardsItself(req: FastifyRequest): boolean {
  const url = req.routeOptions.url ?? ''
  if (url.startsWith('/v1/kv/') || url.startsWith('/v1/watch/')) return true
  return req.method === 'GET' && (url.startsWith('/v1/services') || url.startsWith('/v1/health/'))
}

function unauthorized(code: 'PLX_API_NO_TOKEN' | 'PLX_API_BAD_TOKEN', message: string): PlexusError {
  return new PlexusError(code, message, { status: 401 })
}

/**
 * The token check of requests that came over TCP: 401 without a known token,
 * then the token's ACL on the request (403 naming the rule). Installed on the
 * operator API; a request over the unix socket passes untouched.
 */
export function installTokenAuth(
  app: FastifyInstance,
  deps: { store: ReadableStore; metrics: Metrics },
): void {
  const { aclDenials } = apiMetrics(deps.metrics)
  app.addHook('onRequest', async (req, reply) => {
    if (!remote.has(req.raw.socket)) return
    const header = req.headers.authorization
    if (header === undefined) {
      reply.header('www-authenticate', 'Bearer')
      throw unauthorized('PLX_API_NO_TOKEN', 'this listener needs a token: Authorization: Bearer <token>')
    }
    const secret = /^Bearer (\S+)$/.exec(header)?.[1]
    const rec = secret && TOKEN_PATTERN.test(secret) ? deps.store.get(tokenKey(secret)) : undefined
    const token = rec && aclTokenCodec.valueOf(rec)
    if (!token) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw unauthorized('PLX_API_BAD_TOKEN', 'the token is malformed or unknown')
    }
    if ((req.routeOptions.url ?? '').startsWith('/v1/acl'))
      throw new PlexusError('PLX_ACL_DENIED', 'policies and tokens are managed on the unix socket only', {
        status: 403,
      })
    setAcl(req, aclForToken(token, aclRecords(deps.store).policies), (kind) => aclDenials.inc({ kind }))
    if (!guardsItself(req))
      authorize(req, {
        kind: 'operator',
        op: req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write',
      })
  })
}

/** Serves the operator API on `api.listen`: TLS when `api.tls` is set, the API's connection bounds per address. */
export async function listenTcp(
  app: FastifyInstance,
  cfg: TcpApiConfig & { listen: string },
  limits: ApiLimits,
  metrics: Metrics,
  logger: Logger,
): Promise<() => Promise<void>> {
  const { host, port } = parseListen(cfg.listen, 'api.listen')
  const { connections } = apiMetrics(metrics)
  const gate = new ConnectionGate(gateLimits(limits), (outcome: GateEvent) =>
    connections.inc({ listener: 'tcp', outcome }),
  )
  let server: Server
  if (cfg.tls) {
    const read = (f: string) => {
      try {
        return readFileSync(f)
      } catch (err) {
        throw new PlexusError('PLX_CONFIG_INVALID', `api.tls: cannot read ${f}: ${(err as Error).message}`)
      }
    }
    // a client that never finishes its handshake is held no longer than one whose request drips
    server = createTlsServer({
      cert: read(cfg.tls.certFile),
      key: read(cfg.tls.keyFile),
      minVersion: 'TLSv1.2',
      handshakeTimeout: limits.requestTimeoutMs,
    })
    server.on('tlsClientError', (_err, sock) => sock.destroy())
  } else server = createTcpServer()
  serveThroughGate(app, server, gate, (s) => s.remoteAddress ?? '', {
    event: cfg.tls ? 'secureConnection' : 'connection',
    admitted: (s) => remote.add(s),
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => resolve())
  })
  logger.info({ listen: cfg.listen, tls: Boolean(cfg.tls) }, `serving the operator API on ${cfg.listen}`)
  if (!cfg.tls) logger.warn('api.listen without api.tls: tokens and data cross the network in clear text')
  return async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    gate.destroyAll()
    await closed
  }
}
