import { isPending, type Next, type Reply, type Stage } from '../chain.js'
import { type Query, replyLimit, responseTtls, truncated } from '../wire.js'

interface Entry {
  /** the upstream response as received (id and question case are rewritten per hit) */
  buf: Buffer
  offsets: number[]
  ttls: number[]
  storedAt: number
  expiresAt: number
}

export interface CacheOptions {
  /** entries kept (least recently used dropped first) */
  size: number
  /** upper bound on how long anything is kept, seconds */
  maxTtl: number
  now?: () => number
}

const FLAG_TC = 0x0200

/**
 * A small cache in front of forwarding that honours TTLs: entries live for the
 * smallest TTL of the answer (or the SOA negative TTL), and hits are served
 * with the TTLs decremented by the time spent in the cache.
 */
export class CacheStage implements Stage {
  readonly name = 'cache'
  private readonly entries = new Map<string, Entry>()
  private readonly now: () => number
  hits = 0
  misses = 0

  constructor(private readonly opts: CacheOptions) {
    this.now = opts.now ?? Date.now
  }

  get length(): number {
    return this.entries.size
  }

  private static key(q: Query): string {
    // EDNS presence is part of the key: a reply may carry OPT only if the query did (RFC 6891)
    return `${q.key}${String.fromCharCode(q.qtype, q.qclass)}${q.ednsSize ? 'E' : ''}${q.flags & 0x0010 ? 'C' : ''}`
  }

  handle(q: Query, next: Next): Reply {
    if (this.opts.size <= 0) return next(q)
    const key = CacheStage.key(q)
    const e = this.entries.get(key)
    const now = this.now()
    if (e && e.expiresAt > now) {
      this.hits++
      // refresh recency: Map keeps insertion order, the first key is the least recently used
      this.entries.delete(key)
      this.entries.set(key, e)
      return this.serve(q, e, now)
    }
    if (e) this.entries.delete(key)
    this.misses++
    const r = next(q)
    return isPending(r) ? r.then((b) => this.store(key, b)) : this.store(key, r)
  }

  private store(key: string, buf: Buffer): Buffer {
    if (buf.length >= 12 && !(buf.readUInt16BE(2) & FLAG_TC)) {
      const t = responseTtls(buf)
      const ttl = t ? Math.min(t.cacheTtl, this.opts.maxTtl) : -1
      if (t && ttl > 0) {
        const now = this.now()
        this.entries.set(key, {
          buf: Buffer.from(buf),
          offsets: t.offsets,
          ttls: t.ttls,
          storedAt: now,
          expiresAt: now + ttl * 1000,
        })
        if (this.entries.size > this.opts.size) this.entries.delete(this.entries.keys().next().value!)
      }
    }
    return buf
  }

  private serve(q: Query, e: Entry, now: number): Buffer {
    if (e.buf.length > replyLimit(q)) return truncated(q, e.buf.readUInt16BE(2) & 0xf, false)
    const out = Buffer.from(e.buf)
    out.writeUInt16BE(q.id, 0)
    q.buf.copy(out, 12, 12, q.questionEnd)
    const age = Math.floor((now - e.storedAt) / 1000)
    for (let i = 0; i < e.offsets.length; i++) out.writeUInt32BE(Math.max(e.ttls[i]! - age, 0), e.offsets[i]!)
    return out
  }
}
