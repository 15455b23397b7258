import { chmod, mkdir, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { parseUpstream } from '../dns/forward/resolvconf.js'
import { ConnectionGate, type GateEvent, type GateLimits, type MessageDeadline } from '../lib/conn-gate.js'
import { PlexusError } from '../lib/errors.js'

/** The `api` section's connection bounds (docs/config.md). */
export interface ApiLimits {
  /** connections open at once over all of the API's sockets */
  maxConnections: number
  /** connections one client may hold: per socket file on the unix sockets, per address on TCP */
  maxPerClient: number
  /** time for each whole request, from the connect or the previous response */
  requestTimeoutMs: number
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxConnections: 256,
  maxPerClient: 64,
  requestTimeoutMs: 10_000,
}

export const apiLimitsSchema = {
  maxConnections: { type: 'integer', minimum: 1, maximum: 65536 },
  maxPerClient: { type: 'integer', minimum: 1, maximum: 65536 },
  requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 120000 },
} as const

/** "127.0.0.1:9464", "[::1]:9464" → host and port; PLX_CONFIG_INVALID naming `what` otherwise (the port is required). */
export function parseListen(s: string, what = 'metrics.listen'): { host: string; port: number } {
  const hp = /^(?:[\d.]+|\[[^\]]+\]):\d+$/.test(s) ? parseUpstream(s) : undefined
  if (!hp)
    throw new PlexusError(
      'PLX_CONFIG_INVALID',
      `${what}: "${s}" is not "ip:port" or "[ipv6]:port" with a port from 1 to 65535`,
    )
  return hp
}

export function gateLimits(l: ApiLimits): GateLimits {
  return { maxConnections: l.maxConnections, maxPerClient: l.maxPerClient, messageMs: l.requestTimeoutMs }
}

/** each app's connection deadlines, read by its one `request` listener */
const deadlinesOf = new WeakMap<FastifyInstance, WeakMap<Socket, MessageDeadline>>()

/**
 * The deadlines of `app`'s connections, with the one `request` listener that
 * moves them installed the first time. One per app, not one per server handed
 * to it: the application API rebinds its listener whenever the gateway moves or
 * a bind is retried, and a listener per server would pile up for good.
 */
function deadlinesFor(app: FastifyInstance): WeakMap<Socket, MessageDeadline> {
  const known = deadlinesOf.get(app)
  if (known) return known
  const deadlines = new WeakMap<Socket, MessageDeadline>()
  deadlinesOf.set(app, deadlines)
  app.server.on('request', (req, res) => {
    const d = deadlines.get(req.socket)
    if (!d) return
    let whole = false
    const arrived = (): void => {
      whole = true
      d.received()
    }
    // a request without a body is whole with its headers; 'end' would come only once someone reads it
    const bodyless =
      req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length'] ?? 0) === 0
    if (bodyless) arrived()
    else req.once('end', arrived)
    // a response sent before the body arrived (refused) leaves the deadline running: the client is still dripping
    res.once('close', () => {
      if (whole) d.answered()
    })
  })
  return deadlines
}

/**
 * Hands the connections of `server` to the fastify app through `gate` (which
 * refuses past its bounds), keyed by `clientOf`. A connection's deadline moves
 * when a whole request (headers and body) has arrived and again when its
 * response is done, and is held in between, so a blocking KV read outlives it
 * but a client dripping a request byte by byte does not.
 */
export function serveThroughGate(
  app: FastifyInstance,
  server: Server,
  gate: ConnectionGate,
  clientOf: (s: Socket) => string,
  opts: {
    /** a TLS server hands over its connections once their handshake is done */
    event?: 'connection' | 'secureConnection'
    /** told of each connection handed to the app */
    admitted?: (s: Socket) => void
  } = {},
): void {
  const deadlines = deadlinesFor(app)
  server.on(opts.event ?? 'connection', (sock: Socket) => {
    sock.on('error', () => sock.destroy())
    const d = gate.admit(sock, clientOf(sock))
    if (!d) return
    deadlines.set(sock, d)
    opts.admitted?.(sock)
    app.server.emit('connection', sock)
  })
}

/**
 * Serves one fastify app on several unix sockets (mode 0600: the API can
 * attach containers, so only root may use it). A stale socket file from a
 * crashed agent is replaced, but a live agent on the same path is refused.
 * Every caller is root, so a peer's uid tells clients apart no better than the
 * total does; the socket file does (an extra socket is bind-mounted into one
 * runtime's namespace), so the per-client bound is per socket file.
 */
export async function listenUnix(
  app: FastifyInstance,
  paths: string[],
  limits: ApiLimits = DEFAULT_API_LIMITS,
  count?: (e: GateEvent) => void,
): Promise<() => Promise<void>> {
  await app.ready()
  const gate = new ConnectionGate(gateLimits(limits), count)
  const servers: Server[] = []
  for (const path of paths) {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 })
    if (await socketAnswers(path)) {
      throw new PlexusError('PLX_API_IN_USE', `another plexusd is already serving ${path}`)
    }
    await rm(path, { force: true })
    const server = createServer()
    serveThroughGate(app, server, gate, () => path)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => resolve())
    })
    await chmod(path, 0o600)
    servers.push(server)
  }
  return async () => {
    const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    gate.destroyAll()
    await closed
    await Promise.all(paths.map((p) => rm(p, { force: true })))
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path)
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
}
