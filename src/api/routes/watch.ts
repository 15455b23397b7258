// GET /v1/watch/<prefix>: changes under a key prefix as Server-Sent Events
// (contract: src/api/contract/watch.ts). One module, mounted by the operator
// API and the application API alike.
//
// Written by hand rather than with an SSE plugin: the wire format is three
// lines per event, and what matters here is ours anyway (catch-up from the
// store by index, one consistent cut between catch-up and live events, and
// dropping a reader that falls behind instead of buffering for it).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ReadableStore, WatchEvent } from '../../store/types.js'
import { readableUnder } from '../acl-guard.js'
import { KvKey } from '../contract/kv.js'
import { WatchEventData, WatchHeaders, WatchQuery } from '../contract/watch.js'
import type { ApiDeps } from '../deps.js'
import { apiMetrics } from '../metrics.js'
import { entry, INDEX_HEADER } from './kv.js'

/** a comment line this often keeps proxies from closing an idle stream and finds dead readers */
const PING_MS = 15_000
/**
 * bytes a reader may leave unread before its stream is closed: it comes back
 * with Last-Event-ID and catches up from the store, which costs us nothing
 * while it is away (buffering for it would grow without bound)
 */
export const MAX_UNREAD_BYTES = 1 << 20
/** what EventSource waits before reconnecting (its default is browser-chosen) */
const RETRY_MS = 1000

/** One SSE event in wire format (pure). Data is one JSON line, so it never needs splitting. */
export function sseEvent(name: string, id: number, data: unknown): string {
  return `id: ${id}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`
}

/**
 * the wire text of each live change, made once however many streams send it:
 * the store hands every watcher the same event object
 */
const wireText = new WeakMap<WatchEvent, string>()

/** The wire text of a store change (pure but for the modify index the entry carries). */
export function changeEvent(store: ReadableStore, ev: WatchEvent): string {
  const known = wireText.get(ev)
  if (known) return known
  const text =
    ev.type === 'put'
      ? sseEvent('put', ev.index, entry(store, ev.record))
      : sseEvent(ev.type, ev.index, { key: ev.key, modifyIndex: ev.index })
  wireText.set(ev, text)
  return text
}

/**
 * What a reader resuming after `since` is sent first: the changes it missed,
 * or (from scratch, or when some were reaped) a reset and every live record,
 * then `synced` at the store's index. Pure over the store's state at one instant.
 */
export function catchUp(
  store: ReadableStore,
  prefix: string,
  since: number,
  visible: (key: string) => boolean = () => true,
): string[] {
  const { events, complete } = store.changesSince(prefix, since)
  const out: string[] = []
  if (since > 0 && !complete) {
    out.push(sseEvent('reset', since, { index: since }))
    for (const ev of store.changesSince(prefix, 0).events)
      if (ev.type === 'put' && visible(ev.key)) out.push(changeEvent(store, ev))
  } else {
    // from scratch a delete tells nothing: the reader holds no record yet
    for (const ev of events)
      if ((since > 0 || ev.type === 'put') && visible(ev.key)) out.push(changeEvent(store, ev))
  }
  out.push(sseEvent('synced', store.index, { index: store.index }))
  return out
}

/** what the /v1/watch routes read (registered with that prefix) */
export type WatchComponents = Pick<ApiDeps, 'store' | 'metrics' | 'shutdown'>

export const watchRoutes: FastifyPluginAsyncTypebox<WatchComponents> = async (app, deps) => {
  const { store } = deps
  const { watchStreams } = apiMetrics(deps.metrics)

  app.get(
    '/*',
    {
      schema: {
        description:
          'Changes under a key prefix as Server-Sent Events (text/event-stream); resumable with Last-Event-ID = store index. Events: put, delete, expire, reset, synced (src/api/contract/watch.ts).',
        params: KvKey,
        querystring: WatchQuery,
        headers: WatchHeaders,
        response: {
          200: {
            description: 'one event per change: `id: <index>`, `event: <name>`, `data: <JSON>`',
            content: { 'text/event-stream': { schema: WatchEventData } },
          },
        },
      },
    },
    async (req, reply) => {
      const prefix = (req.params as { '*': string })['*']
      const header = req.headers['last-event-id']
      const since = header !== undefined ? Number(header) : (req.query.index ?? 0)
      // refused before the stream opens (403 PLX_ACL_DENIED); keys a rule hides are never sent
      const visible = readableUnder(req, prefix)
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        [INDEX_HEADER]: String(store.index),
      })
      watchStreams.inc({ outcome: 'opened' })
      const send = (text: string): void => {
        if (res.writableEnded) return
        res.write(text)
        if (res.writableLength > MAX_UNREAD_BYTES) {
          watchStreams.inc({ outcome: 'tooSlow' })
          res.end()
        }
      }
      // watch and catch-up in one synchronous stretch: no change can fall between them
      let last = since
      const unwatch = store.watch(prefix, (ev) => {
        if (ev.index <= last) return
        last = ev.index
        if (visible(ev.key)) send(changeEvent(store, ev))
      })
      send(`retry: ${RETRY_MS}\n\n`)
      for (const text of catchUp(store, prefix, since, visible)) send(text)
      last = Math.max(last, store.index)
      const ping = setInterval(() => send(': ping\n\n'), PING_MS)
      ping.unref()
      const end = (): void => {
        if (!res.writableEnded) res.end()
      }
      deps.shutdown.addEventListener('abort', end)
      res.once('close', () => {
        clearInterval(ping)
        unwatch()
        deps.shutdown.removeEventListener('abort', end)
      })
    },
  )
}
