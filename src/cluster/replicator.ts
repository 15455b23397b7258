import { errorMessage } from '../lib/errors.js'
import type { LocalStore } from '../store/store.js'
import type { Hlc } from '../store/types.js'
import type { GossipVerdict, Scheduler, Transport } from './transport.js'
import {
  decodeDelta,
  decodeRequest,
  decodeState,
  encodeDelta,
  encodePull,
  encodePush,
  encodeState,
  MAX_GOSSIP_BYTES,
} from './wire.js'

export interface ReplicatorConfig {
  /** digest exchange with one random peer this often */
  syncIntervalMs: number
  requestTimeoutMs: number
}

interface Counter {
  inc(name: string, by?: number): void
}
interface Log {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/**
 * Keeps the local store in step with the cluster over any Transport:
 * - local writes go out as gossip deltas;
 * - incoming deltas are validated and merged before the transport forwards them;
 * - a full pull from every peer on (re)connect, and a Scuttlebutt digest pull
 *   from a random peer every syncIntervalMs, repair whatever gossip lost.
 */
export class Replicator {
  private cancelTimer?: () => void
  private unsubscribe?: () => void
  /** counts for tests and the simulator */
  readonly stats = { pulls: 0, pullFailures: 0, recordsPulled: 0 }

  constructor(
    private readonly store: LocalStore,
    private readonly transport: Transport,
    private readonly sched: Scheduler,
    private readonly rng: () => number,
    private readonly cfg: ReplicatorConfig,
    private readonly counters?: Counter,
    private readonly log?: Log,
  ) {}

  start(): void {
    this.transport.setHandlers({
      gossip: (from, data) => this.onGossip(from, data),
      request: (from, data) => this.onRequest(from, data),
      connected: (peer) => void this.pull(peer, true),
    })
    this.unsubscribe = this.store.onLocalWrite((r) => this.transport.publish(encodeDelta([r])))
    this.cancelTimer = this.sched.every(this.cfg.syncIntervalMs, () => this.antiEntropy())
  }

  stop(): void {
    this.cancelTimer?.()
    this.unsubscribe?.()
  }

  onGossip(from: string, data: Uint8Array): GossipVerdict {
    let records: unknown[]
    try {
      records = decodeDelta(data).records
    } catch (err) {
      const reason = data.byteLength > MAX_GOSSIP_BYTES ? 'oversize' : 'malformed'
      this.counters?.inc(`gossip.rejected.${reason}`)
      this.log?.warn({ from, reason, bytes: data.byteLength, err: errorMessage(err) }, 'gossip rejected')
      return 'reject'
    }
    const res = this.store.merge(records)
    if (res.rejected > 0) {
      // the store counted each record under store.rejected.<reason>
      this.counters?.inc('gossip.rejected.records')
      this.log?.warn({ from, rejected: res.rejected }, 'gossip carried records that failed validation')
      return 'reject'
    }
    return res.accepted.length > 0 ? 'accept' : 'ignore'
  }

  onRequest(from: string, data: Uint8Array): Uint8Array {
    let req: ReturnType<typeof decodeRequest>
    try {
      req = decodeRequest(data)
    } catch (err) {
      this.counters?.inc('sync.rejected.malformed')
      this.log?.warn({ from, err: errorMessage(err) }, 'sync request rejected')
      throw err
    }
    if (req.t === 'pull') return encodeState(this.store.recordsAfter(req.digest), this.store.digest())
    this.absorb(req.records, req.marks)
    return encodeState([], new Map())
  }

  /**
   * Push-pull exchange with one peer: pull what it has beyond our digest
   * (everything when full), then push what it lacks by the digest it sent
   * back, so a host whose neighbours all missed its writes still spreads them.
   */
  async pull(peer: string, full: boolean): Promise<void> {
    try {
      const answer = await this.transport.request(
        peer,
        encodePull(full ? new Map() : this.store.digest()),
        this.cfg.requestTimeoutMs,
      )
      const state = decodeState(answer)
      this.stats.pulls++
      const added = this.absorb(state.records, state.marks)
      this.stats.recordsPulled += added
      if (full && this.stats.pulls === 1) {
        // operators (and bench/converge) read how long joining took from this line
        this.log?.info({ peer, records: state.records.length, added }, 'initial sync complete')
      }
      // after a connect both sides pull in full, so only digest exchanges push back
      const theyLack = full ? [] : this.store.recordsAfter(state.marks)
      if (theyLack.length > 0) {
        await this.transport.request(
          peer,
          encodePush(theyLack, this.store.digest()),
          this.cfg.requestTimeoutMs,
        )
      }
    } catch (err) {
      this.stats.pullFailures++
      this.counters?.inc('sync.failed')
      this.transport.reset?.(peer)
      this.log?.debug({ peer, err: errorMessage(err) }, 'sync exchange failed')
    }
  }

  /**
   * Merges a peer's records sent against our watermarks; then we hold
   * everything its watermarks vouch for, so ours may rise to them (unless it
   * sent anything invalid). Returns how many records were new.
   */
  private absorb(records: unknown[], marks: ReadonlyMap<string, Hlc>): number {
    const res = this.store.merge(records)
    if (res.rejected === 0) this.store.raiseWatermarks(marks)
    else this.counters?.inc('sync.rejected.records')
    return res.accepted.length
  }

  private antiEntropy(): void {
    const peers = this.transport.peers()
    if (peers.length === 0) return
    const peer = peers[Math.floor(this.rng() * peers.length)] as string
    void this.pull(peer, false)
  }
}
