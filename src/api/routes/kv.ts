import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { ReplicationBacklog } from '../../cluster/service.js'
import { isPlexusError, PlexusError } from '../../lib/errors.js'
import { isSealed, openValue, parseSecretKey } from '../../lib/sealed.js'
import { mayWrite } from '../../store/record.js'
import type { JsonValue, ReadableStore, StoreRecord } from '../../store/types.js'
import { authorize, readableUnder, writable } from '../acl-guard.js'
import { ErrorBody, flag } from '../contract/common.js'
import {
  KvDeleteQuery,
  KvDeleteReply,
  KvEntry,
  KvGetHeaders,
  KvGetQuery,
  KvGetReply,
  KvKey,
  KvPutBody,
  KvPutQuery,
} from '../contract/kv.js'
import type { ApiDeps } from '../deps.js'
import { apiMetrics } from '../metrics.js'

// Consul-like KV over the replicated store:
//   GET    /v1/kv/<key>[?recurse][&keys][&index=N&wait=30s]
//   PUT    /v1/kv/<key>[?ttl=30s][&cas=N]   body: any JSON value
//   DELETE /v1/kv/<key>[?recurse][&cas=N]
// Every response carries X-Plexus-Index (the store's change counter); pass it
// back as ?index= to block until something under the key changes.

export const INDEX_HEADER = 'x-plexus-index'
/** seconds a refused writer is told to wait (the outbox drains in well under that) */
const RETRY_AFTER_S = 1
const MAX_WAIT_MS = 10 * 60_000
const DEFAULT_WAIT_MS = 5 * 60_000

/** "250ms", "30s", "5m", "1h" or plain milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim())
  if (!m)
    throw new PlexusError(
      'PLX_API_BAD_REQUEST',
      `${what} must be a duration like 500ms, 30s or 5m, got "${text}"`,
    )
  const n = Number(m[1])
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms']
}

/** a record as the API shows it (KV reads and the watch stream) */
export function entry(store: ReadableStore, r: StoreRecord): KvEntry {
  return {
    key: r.key,
    value: r.value,
    owner: r.owner,
    version: r.version,
    modifyIndex: store.modifyIndex(r.key),
    ...(r.ttlMs !== undefined
      ? { ttlMs: r.ttlMs, expiresAt: new Date(r.version.wall + r.ttlMs).toISOString() }
      : {}),
  }
}

/** Resolves once something under key (or prefix) changes past `index`, or after waitMs. */
function changedSince(
  store: ReadableStore,
  key: string,
  recurse: boolean,
  index: number,
  waitMs: number,
  signal: AbortSignal,
): Promise<void> {
  // tombstones keep their index, so a delete that came before this request counts too
  const current = recurse ? store.prefixIndex(key) : store.modifyIndex(key)
  if (current > index) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      unwatch()
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, waitMs)
    const unwatch = store.watch(key, (ev) => {
      if (ev.index > index && (recurse || ev.key === key)) done()
    })
    signal.addEventListener('abort', done)
  })
}

/** Why a write must wait, or undefined when it may go ahead. */
export function refusal(b: ReplicationBacklog | undefined): string | undefined {
  if (!b) return undefined
  if (b.pending >= b.limit) return `${b.pending} writes are waiting to reach the cluster`
  if (b.loop && b.loop.busy >= b.loop.limit)
    return `this agent's event loop was ${Math.round(b.loop.busy * 100)} % busy over the last second (limit ${Math.round(b.loop.limit * 100)} %)`
  return undefined
}

/** what the /v1/kv routes read (registered with that prefix) */
export type KvComponents = Pick<ApiDeps, 'store' | 'members' | 'metrics'>

export const kvRoutes: FastifyPluginAsyncTypebox<KvComponents> = async (app, deps) => {
  const { store } = deps
  const throttled = apiMetrics(deps.metrics).kvThrottled

  // Backpressure: while more local writes wait for the cluster than the
  // replicator holds, or this agent's event loop has had no room for the last
  // second, writers are told to come back (503 + Retry-After) instead of
  // growing queues without bound and starving the cluster's probes and sync.
  // Reads are never refused.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'PUT' && req.method !== 'DELETE') return
    const why = refusal(deps.members?.replicationBacklog())
    if (!why) return
    throttled.inc()
    return reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_S))
      .send({ error: 'PLX_API_BUSY', message: `${why}; retry in ${RETRY_AFTER_S}s` })
  })

  app.get(
    '/*',
    {
      schema: {
        params: KvKey,
        querystring: KvGetQuery,
        headers: KvGetHeaders,
        response: { 200: KvGetReply, '4xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const key = req.params['*']
      const q = req.query
      const keysOnly = flag(q.keys)
      const recurse = flag(q.recurse) || keysOnly
      const sealKey = req.headers['x-plexus-seal-key']
      if (sealKey !== undefined && recurse)
        throw new PlexusError('PLX_SEAL_USAGE', 'X-Plexus-Seal-Key opens one key, not a prefix')
      // asked before a blocking query waits: a refusal is immediate
      const visible = recurse ? readableUnder(req, key) : () => true
      if (!recurse) authorize(req, { kind: 'kv', op: 'read', key })
      if (q.index !== undefined && q.index > 0) {
        const waitMs = Math.min(q.wait ? parseDuration(q.wait, 'wait') : DEFAULT_WAIT_MS, MAX_WAIT_MS)
        const closed = new AbortController()
        req.raw.once('close', () => closed.abort())
        await changedSince(store, key, recurse, q.index, waitMs, closed.signal)
      }
      reply.header(INDEX_HEADER, String(store.index))
      if (recurse) {
        const records = store.list(key).filter((r) => visible(r.key))
        return keysOnly ? records.map((r) => r.key) : records.map((r) => entry(store, r))
      }
      const r = store.get(key)
      if (!r) return reply.code(404).send({ error: 'PLX_KV_NOT_FOUND', message: `no key ${key}` })
      return sealKey === undefined ? entry(store, r) : { ...entry(store, r), value: unsealed(r, sealKey) }
    },
  )

  app.put(
    '/*',
    {
      schema: {
        params: KvKey,
        querystring: KvPutQuery,
        body: KvPutBody,
        response: { 200: KvEntry, '4xx': ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      if (req.body === undefined) {
        throw new PlexusError(
          'PLX_API_BAD_REQUEST',
          'body must be a JSON value (content-type: application/json)',
        )
      }
      authorize(req, { kind: 'kv', op: 'write', key: req.params['*'] })
      const ttlMs = req.query.ttl ? parseDuration(req.query.ttl, 'ttl') : undefined
      const r = await store.put(req.params['*'], req.body as JsonValue, { ttlMs, cas: req.query.cas })
      reply.header(INDEX_HEADER, String(store.index))
      return entry(store, r)
    },
  )

  const deleteOne = async (req: FastifyRequest, key: string, cas?: number): Promise<boolean> => {
    authorize(req, { kind: 'kv', op: 'write', key })
    return store.delete(key, { cas })
  }

  app.delete(
    '/*',
    {
      schema: {
        params: KvKey,
        querystring: KvDeleteQuery,
        response: { 200: KvDeleteReply, '4xx': ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const key = req.params['*']
      let deleted = 0
      const skipped: string[] = []
      if (flag(req.query.recurse)) {
        // a prefix may hold other hosts' owned keys or keys the caller may not write:
        // delete what this host and the caller may, report the rest
        const mayDelete = writable(req)
        for (const r of store.list(key)) {
          if (!mayWrite(store.self, r.key) || !mayDelete(r.key)) skipped.push(r.key)
          else if (await deps.store.delete(r.key)) deleted++
        }
      } else if (await deleteOne(req, key, req.query.cas)) deleted = 1
      else if (req.query.cas !== undefined && store.get(key)) {
        throw new PlexusError('PLX_STORE_CAS_FAILED', `${key} changed (index ${store.modifyIndex(key)})`, {
          status: 409,
        })
      }
      reply.header(INDEX_HEADER, String(store.index))
      return { deleted, skipped }
    },
  )
}

/**
 * A sealed value opened with the caller's private key: 400 when the header is not a key or the
 * value is not sealed, 403 when it is sealed to another key or does not open (lib/sealed.ts).
 */
function unsealed(r: StoreRecord, keyText: string): JsonValue {
  if (!isSealed(r.value))
    throw new PlexusError('PLX_SEAL_NOT_SEALED', `${r.key} is not a sealed value`, { status: 400 })
  try {
    return openValue(r.value, parseSecretKey(keyText)) as JsonValue
  } catch (err) {
    if (isPlexusError(err, 'PLX_SEAL_WRONG_KEY') || isPlexusError(err, 'PLX_SEAL_OPEN_FAILED'))
      throw new PlexusError(err.code, err.message, { status: 403 })
    throw err
  }
}
