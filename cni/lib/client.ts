import { CniCode, CniError } from './errors.js'

/** The agent's error body: its own code plus, for CNI routes, the CNI error to print. */
interface AgentError {
  error?: string
  message?: string
  cni?: { code: number; msg: string; details?: string }
}

// Socket errors that mean "no agent there (yet)": the runtime should retry.
const UNREACHABLE = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTSOCK',
  'EACCES',
  'ETIMEDOUT',
])

/**
 * POSTs (or GETs) JSON to the agent over its unix socket. Failures become CniErrors:
 * no agent, a dropped connection or a timeout is "try again later" (11), so a
 * runtime whose ADD raced an agent restart retries instead of giving up.
 */
export async function callAgent<T>(
  socket: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  // A dynamic import keeps the bundle free of require/import statements (see plexus.ts).
  const { request } = await import('node:http')
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        agent: false,
        method,
        path,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', (err) => reject(unreachable(socket, err)))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let data: unknown
          try {
            data = text ? JSON.parse(text) : undefined
          } catch {
            return reject(
              new CniError(
                CniCode.INTERNAL,
                `plexusd sent a response that is not JSON (HTTP ${res.statusCode})`,
                text.slice(0, 200),
              ),
            )
          }
          const status = res.statusCode ?? 0
          if (status < 400) return resolve(data as T)
          const e = (data ?? {}) as AgentError
          if (e.cni) return reject(new CniError(e.cni.code, e.cni.msg, e.cni.details ?? ''))
          const code = status === 503 ? CniCode.TRY_AGAIN_LATER : CniCode.INTERNAL
          reject(new CniError(code, `plexusd: ${e.message ?? `HTTP ${status}`}`, e.error ?? ''))
        })
      },
    )
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', (err) => reject(unreachable(socket, err)))
    if (payload) req.write(payload)
    req.end()
  })
}

function unreachable(socket: string, err: NodeJS.ErrnoException): CniError {
  if (UNREACHABLE.has(err.code ?? '') || err.message === 'socket hang up') {
    return new CniError(
      CniCode.TRY_AGAIN_LATER,
      `plexusd is not reachable at ${socket}; try again later`,
      `${err.code ?? ''} ${err.message}`.trim(),
    )
  }
  return new CniError(CniCode.IO_FAILURE, `talking to plexusd at ${socket} failed: ${err.message}`)
}
