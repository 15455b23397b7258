import type { Next, Reply, Stage } from '../chain.js'
import {
  assemble,
  CLASS_ANY,
  CLASS_IN,
  errorReply,
  keyWithin,
  type Query,
  RCODE_REFUSED,
  TYPE_AXFR,
} from '../wire.js'
import type { AnswerTable } from './compile.js'

const TYPE_IXFR = 251

/**
 * Authoritative answers for the zone and for the reverse names of endpoint
 * addresses, from the precomputed table. The live zone (live.ts) patches the
 * table's names in one synchronous step at the end of a change, so a query
 * sees either the old or the new zone, never a mix.
 */
export class ZoneStage implements Stage {
  readonly name = 'zone'
  constructor(public table: AnswerTable) {}

  handle(q: Query, next: Next): Reply {
    if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return next(q)
    const t = this.table
    const e = t.names.get(q.key)
    if (e === undefined) return keyWithin(q.key, t.originKey) ? assemble(q, t.nxdomain) : next(q)
    if (q.qtype === TYPE_AXFR || q.qtype === TYPE_IXFR) return errorReply(q, RCODE_REFUSED)
    const v = e.byType.get(q.qtype)
    if (v === undefined) return assemble(q, t.nodata)
    const s = v.length === 1 ? v[0]! : v[(Math.random() * v.length) | 0]!
    return assemble(q, s, s.rotations ? s.rotations[(Math.random() * s.rotations.length) | 0]! : 0)
  }
}
