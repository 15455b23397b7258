import { errorMessage } from '../lib/errors.js'
import type { LocalStore } from '../store/store.js'
import { syncPosition } from '../store/store.js'
import { type Hlc, NODE_PREFIX, type StoreRecord } from '../store/types.js'
import type { ClusterMetrics } from './metrics.js'
import type { GossipVerdict, Scheduler, Transport } from './transport.js'
import {
  decodeDelta,
  decodeRequest,
  decodeState,
  encodeDeltaOf,
  encodePull,
  encodePushOf,
  encodeState,
  encodeStateOf,
  MAX_GOSSIP_BYTES,
} from './wire.js'

export interface ReplicatorConfig {
  /** digest exchange with one random peer this often */
  syncIntervalMs: number
  requestTimeoutMs: number
  /** whether the peer answered a liveness probe at or after `since` (membership); absent: never */
  answeredSince?: (peer: string, since: number) => boolean
  /** local writes waiting to be gossiped; past this the API refuses writes (503) until it drains */
  maxOutbox?: number
  /** gossip bytes the transport may hold unsent before the outbox waits for it to drain */
  maxTransportBacklogBytes?: number
}

export const DEFAULT_MAX_OUTBOX = 4096
export const DEFAULT_MAX_TRANSPORT_BACKLOG_BYTES = 4 * 1024 * 1024
/** how soon the outbox looks again when the transport is still full */
const DRAIN_POLL_MS = 20
/** a page of a sync answer: far below the transport's message cap, quick to build, merge and time out */
export const SYNC_PAGE_BYTES = 1024 * 1024
/** a round's list of records is reused for its next page this long at most */
const ANSWER_KEEP_MS = 30_000
/** room left in a delta for its framing */
const DELTA_BUDGET = MAX_GOSSIP_BYTES - 1024

interface Log {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/**
 * Keeps the local store in step with the cluster over any Transport:
 * - local writes queue in a bounded outbox and go out as gossip deltas,
 *   batched up to the gossip size cap, only while the transport keeps up
 *   (the API refuses writes while the outbox is full: backpressure);
 * - incoming deltas are validated and merged before the transport forwards them;
 * - a pull from every peer on (re)connect, one connection at a time, and a
 *   Scuttlebutt digest exchange with a random peer every syncIntervalMs,
 *   repair whatever gossip lost.
 */
export class Replicator {
  private cancelTimer?: () => void
  private unsubscribe?: () => void
  /** local writes not yet handed to the transport, each already JSON-encoded */
  private outbox: string[] = []
  private flushScheduled = false
  private readonly maxOutbox: number
  private readonly maxBacklog: number
  /**
   * The last sync answer made for each peer, by the digest it was made for:
   * the pages of one round carry the same digest, so the records after it are
   * found and sorted once a round, not once a page (at 50,000 records a round
   * of 10 pages sorted the map 10 times).
   */
  private readonly answers = new Map<string, { digest: string; records: StoreRecord[]; at: number }>()
  /** peers with an exchange of ours under way: a round still running when the next is due is not doubled */
  private readonly pulling = new Set<string>()
  /** the connect pulls, one after the other (onConnected) */
  private connectPulls: Promise<void> = Promise.resolve()
  /** counts for tests and the simulator */
  readonly stats = { pulls: 0, pullFailures: 0, recordsPulled: 0 }

  constructor(
    private readonly store: LocalStore,
    private readonly transport: Transport,
    private readonly sched: Scheduler,
    private readonly rng: () => number,
    private readonly cfg: ReplicatorConfig,
    private readonly metrics?: ClusterMetrics,
    private readonly log?: Log,
  ) {
    this.maxOutbox = cfg.maxOutbox ?? DEFAULT_MAX_OUTBOX
    this.maxBacklog = cfg.maxTransportBacklogBytes ?? DEFAULT_MAX_TRANSPORT_BACKLOG_BYTES
  }

  start(): void {
    this.transport.setHandlers({
      gossip: (from, data) => this.onGossip(from, data),
      request: (from, data) => this.onRequest(from, data),
      connected: (peer) => this.onConnected(peer),
    })
    this.unsubscribe = this.store.onLocalWrite((r) => {
      // This host's node record goes ahead of a burst of other writes: refreshed only every 10 s and
      // hiding everything the host owns when it lapses, it must not wait behind thousands of KV writes.
      if (r.key.startsWith(NODE_PREFIX)) this.outbox.unshift(JSON.stringify(r))
      else this.outbox.push(JSON.stringify(r))
      this.scheduleFlush(0)
    })
    this.cancelTimer = this.sched.every(this.cfg.syncIntervalMs, () => this.antiEntropy())
  }

  stop(): void {
    this.cancelTimer?.()
    this.unsubscribe?.()
  }

  /**
   * Local writes waiting for the transport, and the bound past which writers
   * are refused. A write is accepted (and acknowledged) whatever this says: it
   * is in the store, and anti-entropy carries it even if gossip drops it; the
   * bound keeps the queue, and the transport's buffers behind it, finite.
   */
  backlog(): { pending: number; limit: number } {
    return { pending: this.outbox.length, limit: this.maxOutbox }
  }

  private scheduleFlush(ms: number): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // after(0): writes of the same burst share a delta
    this.sched.after(ms, () => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** Publishes batched deltas while the transport keeps up; otherwise looks again shortly. */
  private flush(): void {
    while (this.outbox.length > 0) {
      if ((this.transport.backlogBytes?.() ?? 0) > this.maxBacklog) {
        this.metrics?.gossipOutboxWaits.inc()
        this.scheduleFlush(DRAIN_POLL_MS)
        return
      }
      let n = 0
      let bytes = 0
      for (const r of this.outbox) {
        bytes += Buffer.byteLength(r) + 1
        if (n > 0 && bytes > DELTA_BUDGET) break
        n++
      }
      this.transport.publish(encodeDeltaOf(this.outbox.splice(0, n)))
    }
  }

  onGossip(from: string, data: Uint8Array): GossipVerdict {
    let records: unknown[]
    try {
      records = decodeDelta(data).records
    } catch (err) {
      const reason = data.byteLength > MAX_GOSSIP_BYTES ? 'oversize' : 'malformed'
      this.metrics?.gossipMessages.inc({ verdict: 'reject', reason })
      this.log?.warn({ from, reason, bytes: data.byteLength, err: errorMessage(err) }, 'gossip rejected')
      return 'reject'
    }
    const res = this.store.merge(records)
    if (res.rejected > 0) {
      // the store counted each record in plexus_store_records_rejected_total{reason}
      this.metrics?.gossipMessages.inc({ verdict: 'reject', reason: 'records' })
      this.log?.warn({ from, rejected: res.rejected }, 'gossip carried records that failed validation')
      return 'reject'
    }
    const verdict = res.accepted.length > 0 ? 'accept' : 'ignore'
    this.metrics?.gossipMessages.inc({ verdict })
    return verdict
  }

  onRequest(from: string, data: Uint8Array): Uint8Array {
    let req: ReturnType<typeof decodeRequest>
    try {
      req = decodeRequest(data)
    } catch (err) {
      this.metrics?.syncRequestsRejected.inc({ reason: 'malformed' })
      this.log?.warn({ from, err: errorMessage(err) }, 'sync request rejected')
      throw err
    }
    this.metrics?.syncBytes.inc({ direction: 'received' }, data.byteLength)
    const answer = this.answer(from, req)
    this.metrics?.syncBytes.inc({ direction: 'sent' }, answer.byteLength)
    return answer
  }

  private answer(from: string, req: ReturnType<typeof decodeRequest>): Uint8Array {
    if (req.t === 'pull') {
      if (req.after === undefined)
        return encodeState(this.store.recordsAfter(req.digest), this.store.digest())
      const page = pageAfter(this.recordsFor(from, req.digest, req.after), req.after, SYNC_PAGE_BYTES)
      if (page.next === undefined) this.answers.delete(from)
      return encodeStateOf(page.records, this.store.digest(), page.next)
    }
    this.absorb(req.records, req.marks)
    return encodeState([], new Map())
  }

  /**
   * The records after a peer's digest for one round of pages: made on its
   * first page, reused for the next ones of the same digest: the round
   * answers the store as it was at its first page, whose watermarks the
   * puller takes; what was written since is above them and comes next round.
   */
  private recordsFor(from: string, digest: ReadonlyMap<string, Hlc>, after: string): StoreRecord[] {
    const key = JSON.stringify([...digest])
    const now = this.sched.now()
    const kept = this.answers.get(from)
    if (after !== '' && kept?.digest === key && now - kept.at < ANSWER_KEEP_MS) return kept.records
    for (const [peer, a] of this.answers) if (now - a.at >= ANSWER_KEEP_MS) this.answers.delete(peer)
    const records = this.store.recordsAfter(digest)
    this.answers.set(from, { digest: key, records, at: now })
    return records
  }

  /**
   * A new connection pulls what the peer holds beyond our digest, one
   * connection at a time. A joiner connects to every peer at once: each of
   * those pulls used to start from nothing and carried the whole store, five
   * copies of 50,000 records at bench/converge's size run, and joining took
   * 27 s. One after the other, the first brings everything and raises the
   * watermarks, and the next ones bring what is newer. A peer gone before its
   * turn is skipped.
   */
  private onConnected(peer: string): void {
    this.connectPulls = this.connectPulls.then(() =>
      this.transport.peers().includes(peer) ? this.pull(peer, 'connect') : undefined,
    )
  }

  /**
   * An exchange with one peer: pull what it has beyond our digest; then,
   * unless the pull was a connect's (the peer pulls from us on the same
   * connect), push what it lacks by the digest it sent back (a page at most),
   * so a host whose neighbours all missed its writes still spreads them.
   */
  async pull(peer: string, kind: 'connect' | 'exchange'): Promise<void> {
    if (this.pulling.has(peer)) return
    this.pulling.add(peer)
    const began = this.sched.now()
    try {
      const digest = this.store.digest()
      // The answer comes in pages. Watermarks rise to the first page's marks,
      // and only after the last page: every record they vouch for existed when
      // the first page was made, so it is in some page (or a newer version is).
      let marks: ReadonlyMap<string, Hlc> | undefined
      let after = ''
      let received = 0
      let added = 0
      let rejected = false
      for (;;) {
        const answer = await this.exchange(peer, encodePull(digest, after))
        const state = decodeState(answer)
        marks ??= state.marks
        const res = this.store.merge(state.records)
        received += state.records.length
        added += res.accepted.length
        rejected ||= res.rejected > 0
        // an agent of an earlier release answers in one piece, without next
        if (state.next === undefined) break
        if (state.next <= after) throw new Error('sync page cursor did not advance')
        after = state.next
      }
      if (rejected) this.metrics?.syncRounds.inc({ result: 'rejected' })
      else {
        this.store.raiseWatermarks(marks)
        this.metrics?.syncRounds.inc({ result: 'ok' })
      }
      this.stats.pulls++
      this.stats.recordsPulled += added
      if (kind === 'connect' && this.stats.pulls === 1) {
        // operators (and bench/converge) read how long joining took from this line
        this.log?.info({ peer, records: received, added }, 'initial sync complete')
      }
      if (kind === 'exchange') await this.push(peer, marks)
    } catch (err) {
      this.stats.pullFailures++
      this.metrics?.syncRounds.inc({ result: 'failed' })
      // A TCP stream stalled by a partition waits out retransmission backoff, so the connection is
      // dropped (and redialled) unless the peer answered a liveness probe since the round began:
      // then the connection works and the peer was only slow (a loaded peer answers a page late),
      // and hanging up would cost both sides a pull on reconnect.
      const slowOnly = this.cfg.answeredSince?.(peer, began) ?? false
      if (!slowOnly) this.transport.reset?.(peer)
      this.log?.debug({ peer, slowOnly, err: errorMessage(err) }, 'sync exchange failed')
    } finally {
      this.pulling.delete(peer)
    }
  }

  /**
   * Pushes a peer what it lacks by the digest it sent back: unasked, one page at most, with our
   * watermarks only when the page holds all it lacks. A peer that lacks more is joining or was
   * cut off, and pulls it at its own pace (its connect pulls, its own rounds): at 50,000 records,
   * the others' rounds each pushed a joiner the whole store, and merging those took it three times
   * as long as its own pull (bench/converge's size run). The page is taken in map order and the
   * walk stops at it: sorting what a joiner lacks to send a page of it took 14-26 ms a push.
   */
  private async push(peer: string, theirs: ReadonlyMap<string, Hlc>): Promise<void> {
    const page = new Page(SYNC_PAGE_BYTES)
    const all = this.store.eachAfter(theirs, (r) => page.add(r))
    if (page.records.length > 0)
      await this.exchange(peer, encodePushOf(page.records, all ? this.store.digest() : new Map()))
  }

  /** One request of a sync round, its bytes counted both ways. */
  private async exchange(peer: string, req: Uint8Array): Promise<Uint8Array> {
    this.metrics?.syncBytes.inc({ direction: 'sent' }, req.byteLength)
    const answer = await this.transport.request(peer, req, this.cfg.requestTimeoutMs)
    this.metrics?.syncBytes.inc({ direction: 'received' }, answer.byteLength)
    return answer
  }

  /**
   * Merges a peer's records sent against our watermarks; then we hold
   * everything its watermarks vouch for, so ours may rise to them (unless it
   * sent anything invalid). Returns how many records were new.
   */
  private absorb(records: unknown[], marks: ReadonlyMap<string, Hlc>): number {
    const res = this.store.merge(records)
    if (res.rejected === 0) this.store.raiseWatermarks(marks)
    else this.metrics?.syncRequestsRejected.inc({ reason: 'records' })
    return res.accepted.length
  }

  /** A digest pull from a random peer, unless one of ours is still running (a slow round is not doubled up). */
  private antiEntropy(): void {
    const peers = this.transport.peers()
    if (peers.length === 0 || this.pulling.size > 0) return
    const peer = peers[Math.floor(this.rng() * peers.length)] as string
    void this.pull(peer, 'exchange')
  }
}

/** Records JSON-encoded one by one into a page of about `bytes`: it takes at least one, and none once past `bytes`. */
class Page {
  readonly records: string[] = []
  private size = 0
  constructor(private readonly bytes: number) {}

  /** false when the page is full and the record was not taken */
  add(r: StoreRecord): boolean {
    if (this.records.length > 0 && this.size > this.bytes) return false
    const json = JSON.stringify(r)
    this.size += json.length
    this.records.push(json)
    return true
  }
}

/**
 * One page of a sync answer: the records (in recordsAfter's order) after the
 * cursor, JSON-encoded, up to about `bytes`, and the cursor for the next page.
 * The cursor is the sort position of the page's last record, so a page
 * never depends on what the earlier ones held. The page's start is found by
 * bisection: scanning from the top, a round of 30 pages at 50,000 records
 * re-read the list 30 times.
 */
export function pageAfter(
  records: readonly StoreRecord[],
  after: string,
  bytes: number,
): { records: string[]; next?: string } {
  let lo = 0
  if (after !== '') {
    let hi = records.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (syncPosition(records[mid] as StoreRecord) <= after) lo = mid + 1
      else hi = mid
    }
  }
  const page = new Page(bytes)
  for (let i = lo; i < records.length; i++) {
    if (!page.add(records[i] as StoreRecord))
      return { records: page.records, next: syncPosition(records[i - 1] as StoreRecord) }
  }
  return { records: page.records }
}
