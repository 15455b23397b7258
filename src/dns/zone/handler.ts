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
 * addresses, from the precomputed tables of the asker's networks (src/dns/scope.ts),
 * in order: the first table with records of the asked type at the name answers,
 * else the first that has the name says NODATA, else the name is NXDOMAIN (with
 * the first table's SOA) exactly as one that no network has. The live zone
 * (live.ts) patches a table's names in one synchronous step at the end of a
 * change, so a query sees either the old or the new zone, never a mix.
 */
export class ZoneStage implements Stage {
  readonly name = 'zone'
  private readonly tables: AnswerTable[]

  constructor(...tables: [AnswerTable, ...AnswerTable[]]) {
    this.tables = tables
  }

  handle(q: Query, next: Next): Reply {
    if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return next(q)
    let nodata: AnswerTable | undefined
    for (const t of this.tables) {
      const e = t.names.get(q.key)
      if (e === undefined) continue
      if (q.qtype === TYPE_AXFR || q.qtype === TYPE_IXFR) return errorReply(q, RCODE_REFUSED)
      const v = e.byType.get(q.qtype)
      if (v !== undefined) {
        const s = v.length === 1 ? v[0]! : v[(Math.random() * v.length) | 0]!
        return assemble(q, s, s.rotations ? s.rotations[(Math.random() * s.rotations.length) | 0]! : 0)
      }
      nodata ??= t
    }
    if (nodata) return assemble(q, nodata.nodata)
    const first = this.tables[0]!
    return keyWithin(q.key, first.originKey) ? assemble(q, first.nxdomain) : next(q)
  }
}
