// One prefix watched over the agent's SSE stream (GET /v1/watch/<prefix>) for
// as long as the template runs: a lost stream comes back with ?index= of the
// last event it saw, so the agent sends what was missed (or a reset) and no
// change falls between two connections.
import { setTimeout as sleep } from 'node:timers/promises'
import { errorMessage } from '../../lib/errors.js'
import type { ApiClient } from '../client.js'
import { encodeKey } from '../commands/kv.js'
import { parseSse } from '../sse.js'

/** the agent pings every 15 s: this long without a byte means the connection is dead */
const IDLE_MS = 45_000
/** reconnect delays: doubling from the first, up to the last */
const RETRY_FIRST_MS = 500
const RETRY_MAX_MS = 10_000

export interface WatchHandlers {
  /** the first catch-up is complete: what was under the prefix has been sent */
  onSynced(): void
  /** something under the prefix changed after that (or, resumed, while the stream was away) */
  onChange(): void
  log(message: string): void
}

/**
 * Watches `prefix` until `signal` aborts. Rejects only when the first
 * connection fails before it caught up (no agent, 403): a template that
 * cannot watch must not start. Later losses are logged and resumed.
 */
export async function watchPrefix(
  client: ApiClient,
  prefix: string,
  signal: AbortSignal,
  h: WatchHandlers,
): Promise<void> {
  let index: number | undefined
  let synced = false
  let failures = 0
  while (!signal.aborted) {
    let rest = ''
    let lost: string
    const path = `/v1/watch/${encodeKey(prefix)}${index === undefined ? '' : `?index=${index}`}`
    try {
      await client.stream(
        path,
        (chunk) => {
          const parsed = parseSse(rest + chunk)
          rest = parsed.rest
          for (const e of parsed.events) {
            if (e.id !== undefined) index = Number(e.id)
            if (e.event !== 'synced') {
              // the first catch-up is the state the first render reads, not a change
              if (synced) h.onChange()
            } else {
              failures = 0
              if (!synced) {
                synced = true
                h.onSynced()
              }
            }
          }
        },
        { signal, idleMs: IDLE_MS },
      )
      if (signal.aborted) return
      lost = 'the agent closed it'
    } catch (err) {
      if (!synced) throw err
      lost = errorMessage(err)
    }
    const delay = Math.min(RETRY_FIRST_MS * 2 ** failures++, RETRY_MAX_MS)
    h.log(`watch of "${prefix}" lost (${lost}); resuming after index ${index} in ${delay} ms`)
    await sleep(delay, undefined, { signal }).catch(() => undefined)
  }
}
