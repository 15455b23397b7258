// A Server-Sent Events reader for tests: parses the stream of GET /v1/watch/…
// into events and lets a test wait for the next one matching a predicate.
import { type IncomingMessage, type RequestOptions, request } from 'node:http'
import { parseSse, type SseEvent } from '../../src/cli/sse.js'

export { parseSse, type SseEvent }

export interface SseReader {
  status: number
  headers: IncomingMessage['headers']
  /** every event received so far, in order */
  events: SseEvent[]
  /** resolves with the first event (from the oldest not yet taken) that matches; rejects after timeoutMs */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>
  /** resolves when the server ends the stream */
  ended: Promise<void>
  close(): void
}

/** Opens an SSE stream with node's http client (any transport RequestOptions gives: socketPath, host:port). */
export function openSse(opts: RequestOptions): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = request({ agent: false, ...opts, headers: { accept: 'text/event-stream', ...opts.headers } })
    req.on('error', reject)
    req.on('response', (res) => {
      const events: SseEvent[] = []
      let taken = 0
      let buf = ''
      const waiters = new Set<() => void>()
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const parsed = parseSse(buf + chunk)
        buf = parsed.rest
        events.push(...parsed.events)
        for (const w of waiters) w()
      })
      const ended = new Promise<void>((r) => res.once('close', () => r()))
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        ended,
        close: () => req.destroy(),
        next(match = () => true, timeoutMs = 5000) {
          return new Promise((ok, fail) => {
            const look = (): boolean => {
              while (taken < events.length) {
                const e = events[taken++] as SseEvent
                if (match(e)) {
                  ok(e)
                  return true
                }
              }
              return false
            }
            if (look()) return
            const waiter = (): void => {
              if (!look()) return
              clearTimeout(timer)
              waiters.delete(waiter)
            }
            const timer = setTimeout(() => {
              waiters.delete(waiter)
              fail(new Error(`no matching SSE event within ${timeoutMs} ms (got ${events.length})`))
            }, timeoutMs)
            waiters.add(waiter)
          })
        },
      })
    })
    req.end()
  })
}
