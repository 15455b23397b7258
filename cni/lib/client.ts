import type { CniErrorBody } from './agent-api.js'
import { CniCode, CniError } from './errors.js'

/** The agent's error body: its own code plus, for CNI routes, the CNI error to print (any field may be missing from an agent that is not ours). */
type AgentError = Partial<CniErrorBody>

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

/** No agent answered at all (as opposed to an agent that answered "try again later"): DEL then goes on without it. */
export class AgentUnreachable extends CniError {}

/** An HTTP response as far as the plugin cares. */
export interface AgentResponse {
  status: number
  body: string
}

/**
 * Parses one whole HTTP/1.1 response (read to the end of a `connection:
 * close` exchange): status, then the body by content-length or chunked
 * encoding. Undefined when it is cut short: the agent went away mid-answer.
 */
export function parseResponse(raw: Buffer): AgentResponse | undefined {
  const head = raw.indexOf('\r\n\r\n')
  if (head < 0) return undefined
  const lines = raw.toString('latin1', 0, head).split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]
  if (!status) return undefined
  const headers = new Map(
    lines.slice(1).map((l) => {
      const i = l.indexOf(':')
      return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const
    }),
  )
  let body = raw.subarray(head + 4)
  if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
    const parts: Buffer[] = []
    for (let off = 0; ; ) {
      const eol = body.indexOf('\r\n', off)
      const size = eol < 0 ? Number.NaN : Number.parseInt(body.toString('latin1', off, eol), 16)
      if (!Number.isInteger(size) || eol + 2 + size > body.length) return undefined
      if (size === 0) break
      parts.push(body.subarray(eol + 2, eol + 2 + size))
      off = eol + 2 + size + 2
    }
    body = Buffer.concat(parts)
  } else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length'))
    if (!Number.isInteger(length) || body.length < length) return undefined
    body = body.subarray(0, length)
  }
  return { status: Number(status), body: body.toString('utf8') }
}

/**
 * POSTs (or GETs) JSON to the agent over its unix socket. Failures become CniErrors:
 * no agent, a dropped connection or a timeout is "try again later" (11), so a
 * runtime whose ADD raced an agent restart retries instead of giving up.
 *
 * Plain node:net, not node:http: the agent is the only server this talks to,
 * one request per process, and node:http's client costs every container start
 * about 7 ms more (a GET from a fresh process: 31 ms against 24 ms here).
 */
export async function callAgent<T>(
  socket: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  const { createConnection } = process.getBuiltinModule('node:net') // see plexus.ts
  const payload = body === undefined ? '' : JSON.stringify(body)
  const head = [
    `${method} ${path} HTTP/1.1`,
    'host: plexusd',
    'connection: close',
    ...(body === undefined
      ? []
      : ['content-type: application/json', `content-length: ${Buffer.byteLength(payload)}`]),
  ]
  const res = await new Promise<AgentResponse>((resolve, reject) => {
    const chunks: Buffer[] = []
    // write, not end: a node:http server (fastify) drops a request whose client
    // half-closes before the answer is ready; `connection: close` ends the exchange
    const conn = createConnection(socket, () => conn.write(`${head.join('\r\n')}\r\n\r\n${payload}`))
    conn.setTimeout(timeoutMs, () =>
      conn.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
    )
    conn.on('data', (c: Buffer) => chunks.push(c))
    conn.on('error', (err) => reject(unreachable(socket, err)))
    conn.on('end', () => {
      const r = parseResponse(Buffer.concat(chunks))
      if (r) resolve(r)
      else reject(unreachable(socket, Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })))
    })
  })
  return answerOf<T>(res)
}

/** The agent's answer as the plugin takes it: the body of a success, or the CniError an error stands for. */
export function answerOf<T>(res: AgentResponse): T {
  let data: unknown
  try {
    data = res.body ? JSON.parse(res.body) : undefined
  } catch {
    throw new CniError(
      CniCode.INTERNAL,
      `plexusd sent a response that is not JSON (HTTP ${res.status})`,
      res.body.slice(0, 200),
    )
  }
  if (res.status < 400) return data as T
  const e = (data ?? {}) as AgentError
  if (e.cni) throw new CniError(e.cni.code, e.cni.msg, e.cni.details ?? '')
  const code = res.status === 503 ? CniCode.TRY_AGAIN_LATER : CniCode.INTERNAL
  throw new CniError(code, `plexusd: ${e.message ?? `HTTP ${res.status}`}`, e.error ?? '')
}

function unreachable(socket: string, err: NodeJS.ErrnoException): CniError {
  if (UNREACHABLE.has(err.code ?? '') || err.message === 'socket hang up') {
    return new AgentUnreachable(
      CniCode.TRY_AGAIN_LATER,
      `plexusd is not reachable at ${socket}; try again later`,
      `${err.code ?? ''} ${err.message}`.trim(),
    )
  }
  return new CniError(CniCode.IO_FAILURE, `talking to plexusd at ${socket} failed: ${err.message}`)
}
