import { excerpt, PlexusError } from '../lib/errors.js'
import type { Metrics } from '../lib/metrics.js'
import { compareHlc, HlcClock, maxHlc, ZERO_HLC } from './hlc.js'
import { type StoreMetrics, storeMetrics, storeRecordsGauge } from './metrics.js'
import {
  canonicalJson,
  compareRecords,
  expiresAt,
  isExpired,
  keyError,
  keyOwner,
  MAX_VALUE_BYTES,
  mayWrite,
  parseRecord,
  signingText,
} from './record.js'
import {
  type Hlc,
  type JsonValue,
  LEASE_PREFIX,
  NET_LEASE_PREFIX,
  NODE_PREFIX,
  type PutOptions,
  type Store,
  type StoreRecord,
  type WatchEvent,
} from './types.js'

/** Signs canonical record text as this host (returns base64). */
export interface RecordSigner {
  readonly self: string
  sign(text: string): string
}
/** True when `owner`'s key signed `text`. Must be pure (callers may cache). */
export type RecordVerifier = (owner: string, text: string, sig: string) => boolean

export type RejectReason = 'malformed' | 'signature' | 'not-owner' | 'future'

export interface StoreOptions {
  signer: RecordSigner
  verify: RecordVerifier
  /** the agent's metrics registry; the store declares its own (./metrics.ts) */
  metrics?: Metrics
  now?: () => number
  /**
   * How long a dead record is kept after it died: tombstones (from version.wall),
   * TTL-expired records (from expiresAt), and the owned records of a host whose
   * membership record expired (from that record's expiry). This is the partition
   * bound: a host cut off for longer may bring back records deleted meanwhile.
   */
  reapAfterMs?: number
  /** records stamped further than this into the future are refused (a host with a wild clock) */
  maxClockDriftMs?: number
}

export const DEFAULT_REAP_AFTER_MS = 24 * 3600 * 1000
export const DEFAULT_MAX_CLOCK_DRIFT_MS = 60_000
const MAX_TTL_MS = 365 * 24 * 3600 * 1000

/** On-disk form (see persist.ts); also what a restarted simulated host comes back with. */
export interface StoreSnapshot {
  format: 'plexus-store/1'
  clock: Hlc
  index: number
  watermarks: Record<string, Hlc>
  entries: { index: number; record: StoreRecord }[]
}

/**
 * What changed since the last takeChanges(): the journal's unit (persist.ts),
 * so a burst of writes costs disk in proportion to the burst, not to the map.
 */
export interface StoreChanges {
  clock: Hlc
  index: number
  /** entries written, or re-indexed by a visibility change */
  entries: { index: number; record: StoreRecord }[]
  /** keys reaped */
  removed: string[]
  /** every watermark, present only when one changed */
  watermarks?: Record<string, Hlc>
}

export interface MergeResult {
  /** records that changed this host's map (worth forwarding) */
  accepted: StoreRecord[]
  rejected: number
  /** already held, or older than what is held */
  stale: number
}

interface Entry {
  record: StoreRecord
  /** modify index of the last change (of the record or of its visibility) */
  index: number
  live: boolean
}

/** a key's first segment with its slash ("nodes/"), or the whole key when it has none */
/**
 * One owner's keys, and its id as the one string its records share: each
 * record decoded off the wire brings its own copy of the 52-character peer
 * id, 3.5 MB at 50,000 records (heap snapshot, bench/converge's size run).
 */
class OwnedKeys extends Set<string> {
  constructor(readonly id: string) {
    super()
  }
}

const bucketOf = (key: string): string => {
  const slash = key.indexOf('/')
  return slash < 0 ? key : key.slice(0, slash + 1)
}

/** Where a record sorts in a sync answer: node records first (hosts appear before what they own), then by key. */
export const syncPosition = (r: StoreRecord): string => (r.key.startsWith(NODE_PREFIX) ? '0' : '1') + r.key

/** a node record says its host is gone: deleted or expired (none: not known to be gone) */
const nodeDown = (node: StoreRecord | undefined, now: number): boolean =>
  node !== undefined && (node.tombstone || isExpired(node, now))

/**
 * Whether the record at key hides while its owner's node record is dead: owned records other than
 * the node record itself. Leases (of the cluster network and of named networks) are exempt: they
 * carry their own, much longer TTL and the holder's fencing rule (src/ipam/README.md), so a restart
 * or partition shorter than the lease changes nothing in any datapath.
 */
const hideable = (key: string): boolean =>
  !key.startsWith(NODE_PREFIX) &&
  !key.startsWith(LEASE_PREFIX) &&
  !key.startsWith(NET_LEASE_PREFIX) &&
  keyOwner(key) !== undefined

/**
 * The local replica: an LWW map of signed records. No timers and no I/O; the
 * cluster feeds it remote records (merge), calls sweep() on a timer, and
 * reads digests for anti-entropy.
 *
 * A record is live when it is not a tombstone, not past its TTL, and (for
 * owned keys other than nodes/<id>) its owner's membership record is not
 * expired or deleted. That last rule is a function of the map alone, so every
 * host hides the same records when a host dies and shows them again when its
 * heartbeat returns.
 */
export class LocalStore implements Store {
  readonly self: string
  private readonly entries = new Map<string, Entry>()
  /**
   * The same entries by their key's first segment ("nodes/", "registrations/"):
   * a prefix read walks its segment, not the whole map. Every consumer lists
   * one kind of record on each pass, and at 50,000 registrations a full walk
   * per list made listing node records cost what listing everything does.
   */
  private readonly buckets = new Map<string, Map<string, Entry>>()
  /** owned keys by owner peer id, to re-evaluate them when that owner's node record changes */
  private readonly owned = new Map<string, OwnedKeys>()
  /** per-origin watermark: every record of that origin up to here is held (or superseded) */
  private readonly marks = new Map<string, Hlc>()
  private readonly watchers = new Set<{ prefix: string; fn: (ev: WatchEvent) => void }>()
  private readonly localWriteListeners = new Set<(r: StoreRecord) => void>()
  private readonly changeListeners = new Set<(own: boolean) => void>()
  private readonly clock: HlcClock
  private readonly now: () => number
  private readonly reapAfterMs: number
  private readonly maxDriftMs: number
  private idx = 0
  /** newest version this host wrote */
  private ownMark?: Hlc
  /** highest modify index of a reaped record (see ReadableStore.prefixIndex) */
  private reapedIndex = 0
  /** keys changed since takeChanges(); undefined until a journal asks (the simulator keeps none) */
  private dirty?: Set<string>
  private marksDirty = false
  private readonly metrics?: StoreMetrics

  constructor(
    private readonly opts: StoreOptions,
    snapshot?: StoreSnapshot,
  ) {
    this.self = opts.signer.self
    this.now = opts.now ?? Date.now
    this.reapAfterMs = opts.reapAfterMs ?? DEFAULT_REAP_AFTER_MS
    this.maxDriftMs = opts.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS
    this.clock = new HlcClock(this.now, snapshot?.clock ?? ZERO_HLC)
    if (opts.metrics) {
      this.metrics = storeMetrics(opts.metrics)
      storeRecordsGauge(opts.metrics, () => this.counts())
    }
    if (snapshot) this.restore(snapshot)
  }

  /** Records held: live, and dead ones (tombstones, expired) kept until reaped. */
  counts(): { live: number; dead: number } {
    let live = 0
    for (const e of this.entries.values()) if (e.live) live++
    return { live, dead: this.entries.size - live }
  }

  get index(): number {
    return this.idx
  }

  get(key: string): StoreRecord | undefined {
    const e = this.entries.get(key)
    return e?.live && !isExpired(e.record, this.now()) ? e.record : undefined
  }

  list(prefix: string): StoreRecord[] {
    const now = this.now()
    const out: StoreRecord[] = []
    for (const [key, e] of this.under(prefix)) {
      if (e.live && key.startsWith(prefix) && !isExpired(e.record, now)) out.push(e.record)
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** Non-tombstone records under prefix, live or not (e.g. the expired heartbeat of a dead host, until reaped). */
  listHeld(prefix: string): StoreRecord[] {
    const out: StoreRecord[] = []
    for (const [key, e] of this.under(prefix))
      if (!e.record.tombstone && key.startsWith(prefix)) out.push(e.record)
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  modifyIndex(key: string): number {
    return this.entries.get(key)?.index ?? 0
  }

  prefixIndex(prefix: string): number {
    let max = this.reapedIndex
    for (const [key, e] of this.under(prefix)) if (e.index > max && key.startsWith(prefix)) max = e.index
    return max
  }

  changesSince(prefix: string, index: number): { events: WatchEvent[]; complete: boolean } {
    const now = this.now()
    const events: WatchEvent[] = []
    for (const [key, e] of this.under(prefix)) {
      if (e.index <= index || !key.startsWith(prefix)) continue
      const type = e.live && !isExpired(e.record, now) ? 'put' : e.record.tombstone ? 'delete' : 'expire'
      events.push({ type, key, record: e.record, index: e.index })
    }
    return { events: events.sort((a, b) => a.index - b.index), complete: this.reapedIndex <= index }
  }

  watch(prefix: string, fn: (ev: WatchEvent) => void): () => void {
    const w = { prefix, fn }
    this.watchers.add(w)
    return () => this.watchers.delete(w)
  }

  /** Called with each record this host writes (the cluster publishes it). */
  onLocalWrite(fn: (r: StoreRecord) => void): () => void {
    this.localWriteListeners.add(fn)
    return () => this.localWriteListeners.delete(fn)
  }

  /**
   * Called after any change of the map (persistence schedules a journal
   * append); `own`: the change holds a record this host wrote.
   */
  onChange(fn: (own: boolean) => void): () => void {
    this.changeListeners.add(fn)
    return () => this.changeListeners.delete(fn)
  }

  async put(key: string, value: JsonValue, opts: PutOptions = {}): Promise<StoreRecord> {
    this.checkWrite(key)
    if (value === undefined) throw new PlexusError('PLX_STORE_BAD_VALUE', 'value is missing', { status: 400 })
    if (canonicalJson(value).length > MAX_VALUE_BYTES) {
      throw new PlexusError('PLX_STORE_TOO_LARGE', `value larger than ${MAX_VALUE_BYTES} bytes`, {
        status: 413,
      })
    }
    const ttl = opts.ttlMs
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_MS)) {
      throw new PlexusError('PLX_STORE_BAD_TTL', `ttl must be 1 ms .. 365 days, got ${ttl}`, { status: 400 })
    }
    if (opts.cas !== undefined && opts.cas !== this.liveIndex(key)) {
      throw new PlexusError('PLX_STORE_CAS_FAILED', `${key} changed (index ${this.liveIndex(key)})`, {
        status: 409,
      })
    }
    return this.writeLocal({ key, value, tombstone: false, ...(ttl !== undefined ? { ttlMs: ttl } : {}) })
  }

  async delete(key: string, opts: { cas?: number } = {}): Promise<boolean> {
    this.checkWrite(key)
    const cur = this.liveIndex(key)
    if (cur === 0 || (opts.cas !== undefined && opts.cas !== cur)) return false
    this.writeLocal({ key, value: null, tombstone: true })
    return true
  }

  /**
   * Merges records from another host. Each is shape-checked, owner-checked and
   * signature-checked before it can touch the map; failures are counted under
   * plexus_store_records_rejected_total{reason} and dropped. LWW by compareRecords.
   */
  merge(input: readonly unknown[]): MergeResult {
    const now = this.now()
    const res: MergeResult = { accepted: [], rejected: 0, stale: 0 }
    for (const x of input) {
      const verdict = this.check(x, now)
      if (verdict === 'stale') {
        res.stale++
        continue
      }
      if (typeof verdict === 'string') {
        res.rejected++
        this.metrics?.rejected.inc({ reason: verdict })
        continue
      }
      this.clock.observe(verdict.version)
      this.apply(verdict, now)
      res.accepted.push(verdict)
    }
    if (res.accepted.length) this.changed(res.accepted.some((r) => r.owner === this.self))
    return res
  }

  /**
   * Validates one outside record; returns it, 'stale' when what we hold
   * already wins (checked before the signature: a stale record is dropped
   * either way, and full pulls are mostly stale), or the reason it is refused.
   */
  private check(x: unknown, now: number): StoreRecord | RejectReason | 'stale' {
    let r: StoreRecord
    try {
      r = parseRecord(x)
    } catch {
      return 'malformed'
    }
    if (!mayWrite(r.owner, r.key)) return 'not-owner'
    const cur = this.entries.get(r.key)
    if (cur && compareRecords(r, cur.record) <= 0) return 'stale'
    if (!this.opts.verify(r.owner, signingText(r), r.sig)) return 'signature'
    if (r.version.wall > now + this.maxDriftMs) return 'future'
    return r
  }

  /**
   * Applies time: TTL expiry, hiding/showing records of dead/revived owners,
   * and reaping records dead for longer than reapAfterMs. Run it on a timer.
   */
  sweep(): void {
    const now = this.now()
    let changed = false
    const reapOwners: string[] = []
    // whose node record is dead, read once: per record it was a key built and looked up, 50 ms a
    // sweep (every second) at 50,000 records
    const down = new Set<string>()
    for (const owner of this.owned.keys())
      if (nodeDown(this.entries.get(NODE_PREFIX + owner)?.record, now)) down.add(owner)
    for (const [key, e] of this.entries) {
      const r = e.record
      const live = !r.tombstone && !isExpired(r, now) && !(down.has(r.owner) && hideable(key))
      if (live !== e.live) {
        this.setVisibility(e, live)
        changed = true
      }
      if (live) continue
      const since = this.deadSince(e.record)
      if (since === undefined || now < since + this.reapAfterMs) continue
      if (key.startsWith(NODE_PREFIX)) reapOwners.push(e.record.owner)
      else if (!this.ownerDown(e.record, now)) this.remove(key)
      changed = true
    }
    // A dead host's records go together with its node record (otherwise they
    // would count as live again once the node record is gone), and so does its
    // watermark, so the host can come back later and be pulled afresh.
    for (const owner of reapOwners) {
      for (const key of [...(this.owned.get(owner) ?? [])]) this.remove(key)
      this.marks.delete(owner)
      this.marksDirty = true
    }
    if (changed) this.changed(false)
  }

  /**
   * Scuttlebutt digest: per origin, the version up to which we hold all its
   * records; for this host, its newest own write (absent if it never wrote,
   * so hosts that only read do not grow everyone's digest).
   */
  digest(): Map<string, Hlc> {
    const d = new Map(this.marks)
    if (this.ownMark) d.set(this.self, this.ownMark)
    return d
  }

  /**
   * Every held record (live or dead) newer than the digest's watermark for its
   * owner, in syncPosition order (node records first, then by key), so a sync
   * answer can be cut into pages.
   */
  recordsAfter(digest: ReadonlyMap<string, Hlc>): StoreRecord[] {
    const out: { pos: string; record: StoreRecord }[] = []
    this.eachAfter(digest, (record) => {
      out.push({ pos: syncPosition(record), record })
      return true
    })
    return out.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : 0)).map((e) => e.record)
  }

  /**
   * The records recordsAfter(digest) holds, unsorted, offered to `take` until
   * it returns false; true when every one was offered. A caller that wants a
   * page stops there instead of sorting the whole map (a joiner lacks all of it).
   */
  eachAfter(digest: ReadonlyMap<string, Hlc>, take: (r: StoreRecord) => boolean): boolean {
    for (const { record } of this.entries.values()) {
      if (compareHlc(record.version, digest.get(record.owner) ?? ZERO_HLC) > 0 && !take(record)) return false
    }
    return true
  }

  /**
   * After merging a peer's recordsAfter(ourDigest), we hold everything that
   * peer's watermarks vouch for, so ours may rise to theirs. Only sync calls
   * this, never gossip: a gossiped record says nothing about older ones.
   */
  raiseWatermarks(peerMarks: ReadonlyMap<string, Hlc>): void {
    for (const [origin, mark] of peerMarks) {
      if (origin === this.self) continue
      const cur = this.marks.get(origin)
      this.marks.set(origin, cur ? maxHlc(cur, mark) : mark)
      this.marksDirty = true
    }
  }

  snapshot(): StoreSnapshot {
    return {
      format: 'plexus-store/1',
      clock: this.clock.last,
      index: this.idx,
      watermarks: Object.fromEntries(this.marks),
      entries: [...this.entries.values()].map((e) => ({ index: e.index, record: e.record })),
    }
  }

  /** Starts recording which keys change, for takeChanges(). */
  trackChanges(): void {
    this.dirty ??= new Set()
  }

  /** The changes since the last call (or since trackChanges()), and forgets them. */
  takeChanges(): StoreChanges {
    const out: StoreChanges = { clock: this.clock.last, index: this.idx, entries: [], removed: [] }
    for (const key of this.dirty ?? []) {
      const e = this.entries.get(key)
      if (e) out.entries.push({ index: e.index, record: e.record })
      else out.removed.push(key)
    }
    this.dirty?.clear()
    if (this.marksDirty) out.watermarks = Object.fromEntries(this.marks)
    this.marksDirty = false
    return out
  }

  private restore(s: StoreSnapshot): void {
    const now = this.now()
    for (const { index, record } of s.entries) {
      const r = this.check(record, Number.MAX_SAFE_INTEGER)
      if (r === 'stale') continue
      if (typeof r === 'string') {
        this.metrics?.snapshotDropped.inc({ reason: r })
        continue
      }
      this.clock.observe(r.version)
      if (r.owner === this.self) this.ownMark = this.ownMark ? maxHlc(this.ownMark, r.version) : r.version
      this.hold(r.key, { record: r, index, live: false })
      this.track(r)
      this.idx = Math.max(this.idx, index)
    }
    for (const e of this.entries.values()) e.live = this.computeLive(e.record, now)
    for (const [origin, mark] of Object.entries(s.watermarks)) this.marks.set(origin, mark)
    this.idx = Math.max(this.idx, s.index)
  }

  private checkWrite(key: string): void {
    const err = keyError(key)
    if (err)
      throw new PlexusError('PLX_STORE_BAD_KEY', `${err}: ${JSON.stringify(excerpt(key))}`, { status: 400 })
    if (!mayWrite(this.self, key)) {
      throw new PlexusError('PLX_STORE_NOT_OWNER', `${key} belongs to ${keyOwner(key)}, not this host`, {
        status: 403,
      })
    }
  }

  private liveIndex(key: string): number {
    return this.get(key) ? this.modifyIndex(key) : 0
  }

  private writeLocal(fields: Pick<StoreRecord, 'key' | 'value' | 'tombstone' | 'ttlMs'>): StoreRecord {
    const unsigned = { ...fields, owner: this.self, version: this.clock.tick() }
    const record: StoreRecord = { ...unsigned, sig: this.opts.signer.sign(signingText(unsigned)) }
    this.apply(record, this.now())
    for (const fn of this.localWriteListeners) fn(record)
    this.changed(true)
    return record
  }

  private apply(r: StoreRecord, now: number): void {
    if (r.owner === this.self) this.ownMark = this.ownMark ? maxHlc(this.ownMark, r.version) : r.version
    const prev = this.entries.get(r.key)
    const e: Entry = { record: r, index: ++this.idx, live: this.computeLive(r, now) }
    this.hold(r.key, e)
    this.dirty?.add(r.key)
    this.track(r)
    if (prev && prev.record.owner !== r.owner) this.owned.get(prev.record.owner)?.delete(r.key)
    if (e.live) this.emit('put', e)
    else if (prev?.live) this.emit(r.tombstone ? 'delete' : 'expire', e)
    // only a change of the owner's liveness can show or hide its records: a heartbeat that changes
    // nothing skips the walk over them (10,000 a host at bench/converge's size run, every few seconds)
    if (r.key.startsWith(NODE_PREFIX) && nodeDown(prev?.record, now) !== nodeDown(r, now))
      this.reevaluateOwner(keyOwner(r.key) as string, now)
  }

  private hold(key: string, e: Entry): void {
    this.entries.set(key, e)
    const b = bucketOf(key)
    const bucket = this.buckets.get(b) ?? new Map<string, Entry>()
    this.buckets.set(b, bucket)
    bucket.set(key, e)
  }

  /** the entries a prefix can match: its segment's bucket, or all when the prefix names no whole segment */
  private under(prefix: string): Iterable<[string, Entry]> {
    return prefix.includes('/') ? (this.buckets.get(bucketOf(prefix)) ?? []) : this.entries
  }

  private track(r: StoreRecord): void {
    r.owner = this.owned.get(r.owner)?.id ?? r.owner // the same text
    if (keyOwner(r.key) === undefined) return
    const keys = this.owned.get(r.owner) ?? new OwnedKeys(r.owner)
    this.owned.set(r.owner, keys)
    keys.add(r.key)
  }

  private remove(key: string): void {
    const e = this.entries.get(key)
    if (!e) return
    this.entries.delete(key)
    const bucket = this.buckets.get(bucketOf(key))
    bucket?.delete(key)
    if (bucket?.size === 0) this.buckets.delete(bucketOf(key))
    this.dirty?.add(key)
    this.reapedIndex = Math.max(this.reapedIndex, e.index)
    this.owned.get(e.record.owner)?.delete(key)
    if (this.owned.get(e.record.owner)?.size === 0) this.owned.delete(e.record.owner)
  }

  /** The owner's node record changed: its other owned records may appear or disappear. */
  private reevaluateOwner(owner: string, now: number): void {
    for (const key of this.owned.get(owner) ?? []) {
      if (key.startsWith(NODE_PREFIX)) continue
      const e = this.entries.get(key)
      if (!e) continue
      const live = this.computeLive(e.record, now)
      if (live !== e.live) this.setVisibility(e, live)
    }
  }

  private setVisibility(e: Entry, live: boolean): void {
    e.live = live
    e.index = ++this.idx
    this.dirty?.add(e.record.key)
    this.emit(live ? 'put' : e.record.tombstone ? 'delete' : 'expire', e)
  }

  private computeLive(r: StoreRecord, now: number): boolean {
    return !r.tombstone && !isExpired(r, now) && !this.ownerDown(r, now)
  }

  /** True when r is hidden with its owner (hideable) and the owner's node record is deleted or expired. */
  private ownerDown(r: StoreRecord, now: number): boolean {
    return hideable(r.key) && nodeDown(this.entries.get(NODE_PREFIX + r.owner)?.record, now)
  }

  /** When a dead record died (tombstone: its version; TTL: expiry; hidden: its owner's node record's death). */
  private deadSince(r: StoreRecord): number | undefined {
    if (r.tombstone) return r.version.wall
    const at = expiresAt(r)
    if (at !== undefined && at <= this.now()) return at
    const node = this.entries.get(NODE_PREFIX + r.owner)?.record
    return node && node !== r ? this.deadSince(node) : undefined
  }

  private emit(type: WatchEvent['type'], e: Entry): void {
    const ev: WatchEvent = { type, key: e.record.key, record: e.record, index: e.index }
    for (const w of this.watchers) {
      if (!ev.key.startsWith(w.prefix)) continue
      try {
        w.fn(ev)
      } catch {
        this.metrics?.watchErrors.inc()
      }
    }
  }

  private changed(own: boolean): void {
    for (const fn of this.changeListeners) fn(own)
  }
}
