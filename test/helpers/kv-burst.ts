import http from 'node:http'

export interface BurstResult {
  /** keys the agent acknowledged (200) */
  acknowledged: string[]
  /** 503 answers (each carried Retry-After; the key was retried after it) */
  refused: number
  /** any other answer or a transport error: status code or error code, with how often */
  failures: Record<string, number>
  ms: number
}

/**
 * Writes `count` keys `<prefix>/<i>` (or `entry(i)`) as fast as the agent takes them:
 * `concurrency` keep-alive connections to its unix socket, each PUTting the
 * next key as soon as the last one was answered (what an operator's loader
 * does). A refused write (503) is retried after the Retry-After it carries,
 * scaled by `retryScale` so a test does not sleep whole seconds.
 */
export async function kvBurst(
  socket: string,
  opts: {
    count: number
    concurrency: number
    prefix: string
    retryScale?: number
    /** key and value of write i (default `<prefix>/<i>` and a small object) */
    entry?: (i: number) => { key: string; value: unknown }
  },
): Promise<BurstResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency })
  const res: BurstResult = { acknowledged: [], refused: 0, failures: {}, ms: 0 }
  const put = (key: string, body: string) =>
    new Promise<{ status: number | string; retryAfter?: string }>((resolve) => {
      const req = http.request(
        {
          socketPath: socket,
          agent,
          method: 'PUT',
          path: `/v1/kv/${key}`,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (r) => {
          r.resume()
          r.on('end', () => resolve({ status: r.statusCode ?? 0, retryAfter: r.headers['retry-after'] }))
        },
      )
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: e.code ?? 'error' }))
      req.end(body)
    })
  let next = 0
  const t0 = Date.now()
  const writer = async () => {
    while (next < opts.count) {
      const i = next++
      const e = opts.entry?.(i) ?? {
        key: `${opts.prefix}/${i}`,
        value: { i, note: 'written by a burst of 32 keep-alive writers' },
      }
      const key = e.key
      const body = JSON.stringify(e.value)
      for (;;) {
        const r = await put(key, body)
        if (r.status === 200) res.acknowledged.push(key)
        else if (r.status === 503 && r.retryAfter !== undefined) {
          res.refused++
          await new Promise((ok) => setTimeout(ok, Number(r.retryAfter) * 1000 * (opts.retryScale ?? 1)))
          continue
        } else res.failures[String(r.status)] = (res.failures[String(r.status)] ?? 0) + 1
        break
      }
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, writer))
  res.ms = Date.now() - t0
  agent.destroy()
  return res
}
