import { type Static, Type } from '@sinclair/typebox'
import { KvEntry } from './kv.js'

/**
 * GET /v1/watch/<prefix>: a Server-Sent Events stream (text/event-stream).
 * Every event's `id:` is this agent's store index, so a client that comes back
 * with `Last-Event-ID` (EventSource does it by itself) or `?index=` is told
 * exactly what changed under the prefix since. Events (`event:` name → `data:` JSON):
 * - `put`: a record written or shown again (data: KvEntry)
 * - `delete`, `expire`: a record gone (data: WatchGone)
 * - `reset`: changes since the given index can no longer be told (their
 *   records were reaped): drop what you hold; every live record follows as `put`
 * - `synced`: what was under the prefix has been sent; what follows happens live
 */
export const WatchQuery = Type.Object(
  {
    /** resume after this store index (as Last-Event-ID; the header wins when both are given) */
    index: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)
export type WatchQuery = Static<typeof WatchQuery>

export const WatchHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^\\d{1,15}$' })),
})
export type WatchHeaders = Static<typeof WatchHeaders>

export const WatchGone = Type.Object({ key: Type.String(), modifyIndex: Type.Integer() })
export type WatchGone = Static<typeof WatchGone>

export const WatchSynced = Type.Object({ index: Type.Integer() })
export type WatchSynced = Static<typeof WatchSynced>

/** the `data:` of one event, by its name */
export const WatchEventData = Type.Union([KvEntry, WatchGone, WatchSynced])
export type WatchEventData = Static<typeof WatchEventData>
