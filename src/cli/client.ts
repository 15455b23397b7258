import { request } from 'node:http'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Cannot talk to the agent at all (no socket, refused, permission). */
export class UnreachableError extends Error {}

export interface ApiClient {
  readonly socket: string
  call<T = unknown>(method: string, path: string, body?: unknown, opts?: { timeoutMs?: number }): Promise<T>
  /** GET whose body streams (logs -f): each chunk to onData as it comes, until the agent ends it */
  stream(path: string, onData: (chunk: string) => void): Promise<void>
}

function unreachable(socket: string, err: NodeJS.ErrnoException): Error {
  return ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK'].includes(err.code ?? '')
    ? new UnreachableError(`cannot reach plexusd at ${socket}: is it running? (${err.code})`)
    : err
}

/** Minimal JSON-over-unix-socket client; plexctl must not import agent internals. */
export function createClient(socket: string): ApiClient {
  return {
    socket,
    call<T>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      return new Promise<T>((resolve, reject) => {
        const req = request(
          {
            socketPath: socket,
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
                reject(new ApiError(status, e?.error ?? 'PLX_API_ERROR', e?.message ?? `HTTP ${status}`))
              } else resolve(data as T)
            })
          },
        )
        req.on('timeout', () =>
          req.destroy(new Error(`no answer from plexusd at ${socket} within the timeout`)),
        )
        req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(socket, err)))
        if (payload) req.write(payload)
        req.end()
      })
    },
    stream(path: string, onData: (chunk: string) => void): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const req = request({ socketPath: socket, method: 'GET', path }, (res) => {
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
        })
        req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(socket, err)))
        req.end()
      })
    },
  }
}
