import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type RequestOptions,
} from 'node:http'
import { request as httpsRequest } from 'node:https'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** seconds the agent asked us to wait (Retry-After), when it did */
    readonly retryAfterS?: number,
  ) {
    super(message)
  }
}

/**
 * How long a call keeps coming back to an agent that answers 503
 * PLX_API_BUSY (backpressure: nothing was changed, the request may simply be
 * sent again), waiting what its Retry-After says, at most BUSY_WAIT_MAX_S each time.
 */
const BUSY_RETRY_MS = 30_000
const BUSY_WAIT_MAX_S = 5

/** Cannot talk to the agent at all (no socket, refused, permission). */
export class UnreachableError extends Error {}

/** An agent's operator API over TCP (`api.listen`): its URL, the token and the CA to trust for https. */
export interface RemoteTarget {
  url: URL
  token?: string
  /** PEM of the CA that signed the agent's certificate (`plexctl tls init`) */
  ca?: Buffer
}

export interface ApiClient {
  /** the unix socket, or the URL of a remote agent */
  readonly socket: string
  /** a raw request to the agent, the token added for a remote one (plexctl ui forwards through it) */
  forward(
    o: { method: string; path: string; headers: OutgoingHttpHeaders },
    onResponse: (res: IncomingMessage) => void,
  ): ClientRequest
  call<T = unknown>(method: string, path: string, body?: unknown, opts?: { timeoutMs?: number }): Promise<T>
  /**
   * GET whose body streams (logs -f, a watch): each chunk to onData as it comes, until the agent
   * ends it, the connection is lost (rejects), `signal` aborts it (resolves), or nothing arrives
   * for `idleMs` (rejects: a watch gets a ping every 15 s, so silence means a dead connection)
   */
  stream(
    path: string,
    onData: (chunk: string) => void,
    opts?: { signal?: AbortSignal; idleMs?: number },
  ): Promise<void>
}

function unreachable(socket: string, err: NodeJS.ErrnoException): Error {
  return ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK', 'ECONNRESET', 'EHOSTUNREACH'].includes(
    err.code ?? '',
  )
    ? new UnreachableError(`cannot reach plexusd at ${socket}: is it running? (${err.code})`)
    : err
}

/**
 * Minimal JSON client of the agent API, over its unix socket (a path) or a
 * remote agent's TCP listener (with a token, TLS for https URLs); plexctl must
 * not import agent internals.
 */
export function createClient(target: string | RemoteTarget): ApiClient {
  const socket = typeof target === 'string' ? target : target.url.href
  const request = (
    o: RequestOptions & { method: string; path: string },
    onResponse: (res: IncomingMessage) => void,
  ): ClientRequest => {
    if (typeof target === 'string') return httpRequest({ ...o, socketPath: target }, onResponse)
    const { url, token, ca } = target
    const remote = {
      ...o,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      headers: { ...o.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    }
    return url.protocol === 'https:'
      ? httpsRequest({ ...remote, ...(ca ? { ca } : {}) }, onResponse)
      : httpRequest(remote, onResponse)
  }
  return {
    socket,
    forward: request,
    call<T>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const attempt = (again: boolean): Promise<T> =>
        new Promise<T>((resolve, reject) => {
          const req = request(
            {
              method,
              path,
              headers: payload
                ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
                : {},
              timeout: opts.timeoutMs ?? 30_000,
            },
            (res) => {
              const chunks: Buffer[] = []
              res.on('data', (c: Buffer) => chunks.push(c))
              res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8')
                let data: unknown = text
                try {
                  data = text ? JSON.parse(text) : undefined
                } catch {
                  // non-JSON body: keep the text
                }
                const status = res.statusCode ?? 0
                if (status >= 400) {
                  const e = data as { error?: string; message?: string }
                  const wait = Number(res.headers['retry-after'])
                  reject(
                    new ApiError(
                      status,
                      e?.error ?? 'PLX_API_ERROR',
                      e?.message ?? `HTTP ${status}`,
                      Number.isFinite(wait) && wait >= 0 ? wait : undefined,
                    ),
                  )
                } else resolve(data as T)
              })
            },
          )
          req.on('timeout', () =>
            req.destroy(new Error(`no answer from plexusd at ${socket} within the timeout`)),
          )
          req.on('error', (err: NodeJS.ErrnoException) => {
            // A kept-alive connection the agent closed just as we reused it: the request never reached it
            // (EPIPE), or a GET may simply be asked again. Once, on a fresh connection (Node's advice).
            if (
              again &&
              req.reusedSocket &&
              (err.code === 'EPIPE' || (err.code === 'ECONNRESET' && method === 'GET'))
            )
              resolve(attempt(false))
            else reject(unreachable(socket, err))
          })
          if (payload) req.write(payload)
          req.end()
        })
      const until = Date.now() + BUSY_RETRY_MS
      const busy = async (): Promise<T> => {
        for (;;) {
          try {
            return await attempt(true)
          } catch (err) {
            if (!(err instanceof ApiError) || err.status !== 503 || err.code !== 'PLX_API_BUSY') throw err
            const waitMs = Math.min(err.retryAfterS ?? 1, BUSY_WAIT_MAX_S) * 1000
            if (Date.now() + waitMs > until) throw err
            await new Promise((r) => setTimeout(r, waitMs))
          }
        }
      }
      return busy()
    },
    stream(
      path: string,
      onData: (chunk: string) => void,
      opts: { signal?: AbortSignal; idleMs?: number } = {},
    ): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const { signal, idleMs } = opts
        if (signal?.aborted) return resolve()
        const req = request({ method: 'GET', path, ...(idleMs ? { timeout: idleMs } : {}) }, (res) => {
          const status = res.statusCode ?? 0
          if (status >= 400) {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => {
              let e: { error?: string; message?: string } = {}
              try {
                e = JSON.parse(Buffer.concat(chunks).toString('utf8'))
              } catch {
                // not JSON: the status says enough
              }
              reject(new ApiError(status, e.error ?? 'PLX_API_ERROR', e.message ?? `HTTP ${status}`))
            })
            return
          }
          res.setEncoding('utf8')
          res.on('data', (c: string) => onData(c))
          res.on('end', () => resolve())
          // a connection reset mid-stream ("aborted"): the caller decides whether to come back
          res.on('error', reject)
        })
        const abort = (): void => {
          req.destroy()
          resolve()
        }
        signal?.addEventListener('abort', abort, { once: true })
        req.on('close', () => signal?.removeEventListener('abort', abort))
        req.on('timeout', () => req.destroy(new Error(`nothing from plexusd at ${socket} for ${idleMs} ms`)))
        req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(socket, err)))
        req.end()
      })
    },
  }
}
