// The DNS handler chain (CoreDNS style): each stage answers or passes the query
// to the next. The order is data (CHAIN_ORDER); a stage never knows its neighbours.
import { errorReply, type Query, RCODE_REFUSED } from './wire.js'

export type Reply = Buffer | Promise<Buffer>
export type Next = (q: Query) => Reply

/** narrows a Reply without instanceof (Buffer's generic parameter defeats that narrowing) */
export function isPending(r: Reply): r is Promise<Buffer> {
  return typeof (r as Promise<Buffer>).then === 'function'
}

export interface Stage {
  readonly name: string
  /** answer q, or return next(q); synchronous replies avoid a promise on the hot path */
  handle(q: Query, next: Next): Reply
}

/** zone records (plexus.internal + endpoint PTRs) → cache → forward upstream */
export const CHAIN_ORDER = ['zone', 'cache', 'forward'] as const
export type StageName = (typeof CHAIN_ORDER)[number]

/** Links stages in CHAIN_ORDER; the `next` functions are built once, not per query. */
export function buildChain(stages: Record<StageName, Stage>): Next {
  let next: Next = (q) => errorReply(q, RCODE_REFUSED) // past the last stage: nobody answers this
  for (const name of [...CHAIN_ORDER].reverse()) {
    const stage = stages[name]
    const after = next
    next = (q) => stage.handle(q, after)
  }
  return next
}
