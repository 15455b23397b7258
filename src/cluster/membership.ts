import type { Logger } from '../lib/log.js'
import { labelsCodec, nodeCodec } from '../store/codecs.js'
import { isExpired } from '../store/record.js'
import type { NodeValue } from '../store/records.js'
import type { LocalStore } from '../store/store.js'
import { LABELS_PREFIX, NODE_PREFIX, type StoreRecord } from '../store/types.js'
import { nodeRefreshMs } from './config.js'
import {
  type MemberState,
  memberState,
  nextHealth,
  ownNodeRecord,
  probes,
  type Suspicion,
  suspicionScale,
  suspicions,
} from './detector.js'
import type { Scheduler } from './transport.js'
import {
  type Coordinate,
  distance,
  forgetPeer,
  isCoordinate,
  newVivaldiState,
  observe,
  type VivaldiState,
} from './vivaldi.js'

// Membership: this host's node record, liveness probes of the others and the
// suspicions they lead to (detector.ts), and RTT probes feeding Vivaldi
// coordinates. The node record is rewritten when something in it changes and
// otherwise every refreshIntervalMs: an idle cluster sends a few pings a
// second per host, not a signed record from every host to every host.

export type { MemberState } from './detector.js'

export interface MembershipConfig {
  /** the probe period: this many ms between probe rounds, and the time a probe waits for its answer */
  heartbeatIntervalMs: number
  /** rewrite this host's node record at least this often (capped at a third of nodeTtlMs) */
  refreshIntervalMs: number
  nodeTtlMs: number
  suspectAfterMs: number
  deadAfterMs: number
  probeIntervalMs: number
}

/** members probed each period besides those that failed their last probe (SWIM probes one; two halves the time to notice) */
const PROBES_PER_PERIOD = 2

export interface HostView {
  name: string
  peerId: string
  address: string
  state: MemberState
  self: boolean
  /** ISO time this host last heard the heartbeat */
  lastHeard: string
  silentMs: number
  labels: Record<string, string>
  /** estimated round trip from this host, from Vivaldi coordinates */
  rttMs: number | null
  /** the last round trip measured to this peer (what feeds the coordinates), and how */
  measuredRttMs: number | null
  measuredBy?: RttSource
  version: string
  startedAt: string
  multiaddrs: string[]
  /** its Vivaldi coordinate as it published it (the web UI lays hosts out by it) */
  coordinate?: Coordinate
}

/** Operator labels for host <name> live here (any member may write them; the host merges them into its record). */
export const labelsKey = (name: string) => `${LABELS_PREFIX}${name}`

/** kernel: the TCP connection's own RTT (sock_diag); ping: a probe round trip (probe.ts), where the kernel has no sample */
export type RttSource = 'kernel' | 'ping'
export interface RttSample {
  ms: number
  by: RttSource
}

export interface MembershipDeps {
  store: LocalStore
  sched: Scheduler
  rng: () => number
  logger: Logger
  cfg: MembershipConfig
  /** the parts of this host's NodeValue that do not come from membership itself */
  describe: () => Omit<NodeValue, 'coordinate' | 'labels' | 'suspects'> & { labels: Record<string, string> }
  /** RTT in ms to a connected peer, and how it was measured (absent when there is no network) */
  measureRtt?: (peer: string) => Promise<RttSample>
  /** a liveness probe: settles when the peer answered, rejects when it did not within timeoutMs (absent: standalone) */
  ping?: (peer: string, timeoutMs: number) => Promise<unknown>
  /** calls fn when this host's last connection to a peer closes; returns cancel */
  onDisconnect?: (fn: (peer: string) => void) => () => void
  /** closes this host's connections to a peer: the next probe, sync or gossip dials afresh */
  reset?: (peer: string) => void
  connectedPeers: () => string[]
}

/** A member's node record and what this host makes of it. */
interface Judged {
  rec: StoreRecord
  value: NodeValue
  state: MemberState
  silentMs: number
}

export class Membership {
  /** when each member was last heard from: its node record written (capped by receipt), or a probe answered */
  private readonly heard = new Map<string, number>()
  /** when each member last answered one of our probes (over the connection itself, unlike a relayed record) */
  private readonly answered = new Map<string, number>()
  private readonly states = new Map<string, MemberState>()
  /** members whose last probe went unanswered, and when the first unanswered one was sent */
  private readonly failing = new Map<string, number>()
  private readonly inFlight = new Set<string>()
  /** the suspicions this host's node record carries, and when each was last written */
  private readonly doubts = new Map<string, { doubt: Suspicion; at: number }>()
  /** members still to probe this cycle, in a random order (SWIM's round robin: each is probed once per cycle) */
  private ring: string[] = []
  private vivaldi: VivaldiState = newVivaldiState()
  private readonly measured = new Map<string, RttSample>()
  private readonly cancels: (() => void)[] = []
  private lastWrite = Number.NEGATIVE_INFINITY
  /** HLC wall of this host's newest node record: a suspicion of that version (or later) is refuted */
  private ownWall = 0
  /** the newest suspected version of our record we already answered with a write */
  private refuted = 0
  private writing = false
  private writeAgain = false
  /** Lifeguard's local health score (detector.ts): the probe timeout is the period times 1 + this */
  private health = 0

  constructor(private readonly d: MembershipDeps) {}

  /** Lifeguard's local health score: 0 when this host's probes are answered in time */
  get localHealth(): number {
    return this.health
  }

  get coordinate(): Coordinate {
    return this.vivaldi.coord
  }

  start(): void {
    const { store, sched, cfg } = this.d
    this.cancels.push(
      store.watch(NODE_PREFIX, (ev) => {
        if (ev.type !== 'put' || ev.record.owner === store.self) return
        // A record may arrive late (a sync after lost gossip, a pull on
        // reconnect), so it counts from when it was written, not received:
        // min(now, stamp + one period), the period absorbing modest clock skew.
        const owner = ev.record.owner
        this.hear(owner, Math.min(sched.now(), ev.record.version.wall + cfg.heartbeatIntervalMs))
        const doubt = nodeCodec.valueOf(ev.record)?.suspects?.[store.self]
        // SWIM's refutation: a newer version of our record voids every suspicion of the older one
        // (one write answers every suspicion of the versions before it, however many arrive)
        if (doubt && doubt.v >= this.ownWall && doubt.v > this.refuted) {
          this.refuted = doubt.v
          this.health = nextHealth(this.health, 'refuted')
          this.d.logger.info({ by: owner }, 'suspected by another host: refuting with a new node record')
          void this.announce()
        }
      }),
      // our own labels may be changed from any host: re-announce at once
      store.watch(labelsKey(this.d.describe().name), () => void this.announce()),
      sched.every(cfg.heartbeatIntervalMs, () => this.tick()),
      sched.every(Math.min(cfg.suspectAfterMs, 1000) / 2, () => this.checkStates()),
      sched.every(cfg.probeIntervalMs, () => void this.probeRtt()),
      // a closed connection is the first sign of a crashed agent: probe it now, not when its turn comes
      this.d.onDisconnect?.((peer) => void this.probe(peer)) ?? (() => {}),
    )
    void this.announce()
  }

  stop(): void {
    for (const c of this.cancels.splice(0)) c()
  }

  /** Writes this host's node record now (one write at a time; a request during a write makes one more). */
  async announce(): Promise<void> {
    if (this.writing) {
      this.writeAgain = true
      return
    }
    this.writing = true
    const { store, cfg } = this.d
    try {
      do {
        this.writeAgain = false
        const base = this.d.describe()
        const extra = store.get(labelsKey(base.name))
        const labels = { ...base.labels, ...((extra && labelsCodec.valueOf(extra)) ?? {}) }
        const suspects = Object.fromEntries([...this.doubts].map(([peer, d]) => [peer, d.doubt]))
        const value: NodeValue = { ...base, labels, coordinate: this.vivaldi.coord, suspects }
        this.lastWrite = this.d.sched.now()
        const rec = await store.put(`${NODE_PREFIX}${store.self}`, nodeCodec.encode(value), {
          ttlMs: cfg.nodeTtlMs,
        })
        this.ownWall = rec.version.wall
      } while (this.writeAgain)
    } catch (err) {
      this.d.logger.error({ err }, 'node record write failed')
    } finally {
      this.writing = false
    }
  }

  /** whether the member answered a probe of ours at or after `since`: its connection works, however slow its other answers */
  answeredSince(peer: string, since: number): boolean {
    return (this.answered.get(peer) ?? Number.NEGATIVE_INFINITY) >= since
  }

  state(peer: string): MemberState | undefined {
    if (peer === this.d.store.self) return 'alive'
    return this.judge().get(peer)?.state
  }

  hosts(): HostView[] {
    const now = this.d.sched.now()
    const out: HostView[] = []
    for (const { rec, value: v, state, silentMs } of this.judge().values()) {
      const self = rec.owner === this.d.store.self
      const measured = this.measured.get(rec.owner)
      out.push({
        name: v.name,
        peerId: rec.owner,
        address: v.address,
        state,
        self,
        lastHeard: new Date(now - silentMs).toISOString(),
        silentMs,
        labels: v.labels ?? {},
        rttMs: self || !v.coordinate ? null : round(distance(this.vivaldi.coord, v.coordinate) * 1000),
        measuredRttMs: measured ? round(measured.ms) : null,
        ...(measured ? { measuredBy: measured.by } : {}),
        version: v.version ?? '',
        startedAt: v.startedAt ?? '',
        multiaddrs: v.multiaddrs ?? [],
        ...(isCoordinate(v.coordinate) ? { coordinate: v.coordinate } : {}),
      })
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  /**
   * Every member's state, from the node records this host holds (live, or
   * expired until reaped): expired = dead; an agent that probes is judged by
   * the suspicions others publish of it (detector.ts); an agent of an earlier
   * release by the silence of its heartbeat, as before.
   */
  private judge(): Map<string, Judged> {
    const now = this.d.sched.now()
    const records = this.d.store.listHeld(NODE_PREFIX).filter(ownNodeRecord)
    const values = new Map<string, NodeValue>()
    for (const r of records) {
      const v = nodeCodec.valueOf(r)
      if (v) values.set(r.owner, v)
    }
    const doubted = suspicions(records, values, now)
    const members = records.filter((r) => !isExpired(r, now)).length
    const out = new Map<string, Judged>()
    for (const rec of records) {
      const value = values.get(rec.owner)
      if (!value) continue
      const heard = Math.max(this.heard.get(rec.owner) ?? 0, rec.version.wall)
      const quiet = Math.max(0, now - heard)
      const doubt = doubted.get(rec.owner)
      const j = (state: MemberState, silentMs: number) => out.set(rec.owner, { rec, value, state, silentMs })
      if (rec.owner === this.d.store.self) j('alive', 0)
      else if (isExpired(rec, now)) j('dead', quiet)
      else if (!probes(value)) j(memberState(quiet, this.d.cfg), quiet)
      else if (doubt !== undefined) {
        const silent = Math.max(0, now - doubt.since)
        j(memberState(silent, this.d.cfg, suspicionScale(doubt.accusers, members)), silent)
      } else j('alive', quiet)
    }
    return out
  }

  private hear(peer: string, at: number): void {
    this.heard.set(peer, Math.max(this.heard.get(peer) ?? 0, at))
  }

  /** One probe period: refresh our record when due, probe the members that failed last time and the next few. */
  private tick(): void {
    const { store, sched, cfg } = this.d
    const members = store.list(NODE_PREFIX).filter((r) => ownNodeRecord(r) && r.owner !== store.self)
    // an agent of an earlier release judges us by our heartbeat's silence: write it every period while one is here
    const legacy = members.some((r) => !probes(nodeCodec.valueOf(r)))
    const refreshMs = legacy ? cfg.heartbeatIntervalMs : nodeRefreshMs(cfg)
    if (sched.now() - this.lastWrite >= refreshMs) void this.announce()
    if (!this.d.ping) return
    const live = new Set(members.map((r) => r.owner))
    const targets = new Set([...this.failing.keys()].filter((p) => live.has(p)))
    let refilled = false
    for (let picked = 0; picked < PROBES_PER_PERIOD && picked < live.size; ) {
      if (this.ring.length === 0) {
        if (refilled) break
        this.ring = shuffle([...live], this.d.rng)
        refilled = true
      }
      const peer = this.ring.pop() as string
      if (!live.has(peer) || targets.has(peer)) continue
      targets.add(peer)
      picked++
    }
    for (const peer of targets) void this.probe(peer)
  }

  /**
   * Pings a member; two probes in a row without an answer make (or keep) it
   * suspected in our node record. The second, sent at once, spares the
   * cluster a suspicion and its refutation when only this host's event loop
   * was late (a loaded machine); it costs nothing in detection time, which
   * runs from the first probe missed. Each waits a period times 1 + our local
   * health score: a probe that timed out raises it, so a loaded host gives the
   * next answer longer (a refused connection, a crashed agent, fails at once
   * and raises nothing).
   */
  private async probe(peer: string): Promise<void> {
    const ping = this.d.ping
    if (!ping || peer === this.d.store.self || this.inFlight.has(peer)) return
    this.inFlight.add(peer)
    const sentAt = this.d.sched.now()
    const timeoutMs = this.d.cfg.heartbeatIntervalMs * (1 + this.health)
    let retry = false
    try {
      await ping(peer, timeoutMs)
      this.health = nextHealth(this.health, 'answered')
      this.answered.set(peer, this.d.sched.now())
      this.hear(peer, this.d.sched.now())
      this.failing.delete(peer)
      if (this.doubts.delete(peer)) void this.announce()
    } catch (err) {
      const rec = this.d.store.get(`${NODE_PREFIX}${peer}`)
      if (!rec) return
      const waited = this.d.sched.now() - sentAt
      // Our own loop ran late (the deadline fired half a timeout or more after it was due): the answer
      // may be waiting unread, so this miss says nothing of the member. A loaded host accuses nobody;
      // the others, or the record's TTL, still notice a dead member.
      if (waited > 1.5 * timeoutMs) return
      if (waited >= timeoutMs) this.health = nextHealth(this.health, 'timed-out')
      const first = this.failing.get(peer)
      this.failing.set(peer, first ?? sentAt)
      if (first === undefined) {
        retry = true
        return
      }
      // Unanswered for as long as it takes to suspect a member, a connection may be half-open (a
      // partition, a host gone without a FIN), and TCP would keep it, retransmitting with backoff,
      // long after the path heals. Dropping it lets the next dial find out; these probes are the
      // only liveness check of a connection (libp2p's connection monitor, which pinged every
      // connection every 10 s on a stream of its own, is off: the same work twice). A peer that is
      // merely slow answers within the suspicion time, or Lifeguard's longer timeouts let it.
      if (waited >= timeoutMs && sentAt - first >= this.d.cfg.suspectAfterMs) this.d.reset?.(peer)
      // a refutation (a newer record) restarts the clock: the member was alive when it wrote it
      const had = this.doubts.get(peer)
      if (had?.doubt.v === rec.version.wall) return
      // It refuted our last suspicion: accuse the new version no sooner than suspectAfterMs after the
      // last, or a member only this host cannot reach would make both rewrite their records every
      // period; and count from now, so it has the whole time to refute again.
      const now = this.d.sched.now()
      if (had && now - had.at < this.d.cfg.suspectAfterMs) return
      const doubt = { v: rec.version.wall, since: had ? now : Math.max(first, rec.version.wall) }
      this.d.logger.debug({ peer, err, health: this.health }, 'probe unanswered: suspecting')
      this.doubts.set(peer, { doubt, at: now })
      void this.announce()
    } finally {
      this.inFlight.delete(peer)
      if (retry) void this.probe(peer)
    }
  }

  private checkStates(): void {
    const judged = this.judge()
    for (const [peer, { value, state }] of judged) {
      if (peer === this.d.store.self) continue
      const prev = this.states.get(peer)
      if (state === prev) continue
      this.states.set(peer, state)
      const log = state === 'alive' ? this.d.logger.info : this.d.logger.warn
      log.call(
        this.d.logger,
        { peer, name: value.name, from: prev ?? 'unknown', to: state },
        `host ${value.name} is ${state}`,
      )
    }
    // a member whose record lapsed is dead by that alone: stop probing it and drop our suspicion
    let dropped = false
    for (const peer of [...this.failing.keys(), ...this.doubts.keys()]) {
      if (this.d.store.get(`${NODE_PREFIX}${peer}`)) continue
      this.failing.delete(peer)
      dropped = this.doubts.delete(peer) || dropped
    }
    if (dropped) void this.announce()
    for (const peer of this.states.keys()) {
      if (judged.has(peer)) continue
      this.states.delete(peer)
      this.heard.delete(peer)
      this.answered.delete(peer)
      this.vivaldi = forgetPeer(this.vivaldi, peer)
      this.measured.delete(peer)
    }
  }

  /** One RTT probe of a random connected peer whose coordinate we know. */
  private async probeRtt(): Promise<void> {
    const measure = this.d.measureRtt
    if (!measure) return
    const peers = this.d.connectedPeers()
    if (peers.length === 0) return
    const peer = peers[Math.floor(this.d.rng() * peers.length)] as string
    const rec = this.d.store.get(`${NODE_PREFIX}${peer}`)
    const other = rec && nodeCodec.valueOf(rec)?.coordinate
    if (!other) return
    try {
      const sample = await measure(peer)
      this.measured.set(peer, sample)
      this.vivaldi = observe(this.vivaldi, peer, other, sample.ms, this.d.rng)
    } catch (err) {
      this.d.logger.debug({ peer, err }, 'rtt probe failed')
    }
  }
}

function shuffle<T>(xs: T[], rng: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1))
    ;[xs[i], xs[j]] = [xs[j] as T, xs[i] as T]
  }
  return xs
}

// to the microsecond: kernel RTTs between namespaces are tens of microseconds
const round = (x: number) => Math.round(x * 1000) / 1000
