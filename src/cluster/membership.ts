import type { Logger } from '../lib/log.js'
import { labelsCodec, nodeCodec } from '../store/codecs.js'
import type { NodeValue } from '../store/records.js'
import type { LocalStore } from '../store/store.js'
import { LABELS_PREFIX, NODE_PREFIX, type StoreRecord } from '../store/types.js'
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

// Membership: this host's heartbeat record, a failure detector over the
// heartbeats of the others, and RTT probes feeding Vivaldi coordinates.

export type MemberState = 'alive' | 'suspect' | 'dead'

export interface MembershipConfig {
  heartbeatIntervalMs: number
  nodeTtlMs: number
  suspectAfterMs: number
  deadAfterMs: number
  probeIntervalMs: number
}

/**
 * Failure detector: a host is alive while its heartbeat record keeps changing,
 * suspect after suspectAfterMs of silence, dead after deadAfterMs. "Heard" is
 * when the newest heartbeat was written (capped by local receipt time; see the
 * watch in start()). Detection bound: deadAfterMs plus one heartbeat period
 * plus one check tick.
 */
export function memberState(silentMs: number, cfg: Pick<MembershipConfig, 'suspectAfterMs' | 'deadAfterMs'>) {
  if (silentMs >= cfg.deadAfterMs) return 'dead'
  if (silentMs >= cfg.suspectAfterMs) return 'suspect'
  return 'alive'
}

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

/** kernel: the TCP connection's own RTT (sock_diag); ping: libp2p ping, where the kernel has no sample */
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
  describe: () => Omit<NodeValue, 'coordinate' | 'labels'> & { labels: Record<string, string> }
  /** RTT in ms to a connected peer, and how it was measured (absent when there is no network) */
  measureRtt?: (peer: string) => Promise<RttSample>
  connectedPeers: () => string[]
}

export class Membership {
  private readonly lastHeard = new Map<string, number>()
  private readonly states = new Map<string, MemberState>()
  private vivaldi: VivaldiState = newVivaldiState()
  private readonly measured = new Map<string, RttSample>()
  private readonly cancels: (() => void)[] = []

  constructor(private readonly d: MembershipDeps) {}

  get coordinate(): Coordinate {
    return this.vivaldi.coord
  }

  start(): void {
    const { store, sched, cfg } = this.d
    this.cancels.push(
      store.watch(NODE_PREFIX, (ev) => {
        if (ev.type !== 'put' || ev.record.owner === store.self) return
        // A heartbeat may arrive late (a sync after lost gossip, a pull on
        // reconnect), so it counts from when it was written, not received:
        // min(now, stamp + one heartbeat period), the period absorbing modest
        // clock skew. A host whose clock lags by more looks staler than it is.
        const owner = ev.record.owner
        const heard = Math.min(sched.now(), ev.record.version.wall + cfg.heartbeatIntervalMs)
        this.lastHeard.set(owner, Math.max(this.lastHeard.get(owner) ?? 0, heard))
      }),
      // our own labels may be changed from any host: re-announce at once
      store.watch(labelsKey(this.d.describe().name), () => void this.heartbeat()),
      sched.every(cfg.heartbeatIntervalMs, () => void this.heartbeat()),
      sched.every(Math.min(cfg.suspectAfterMs, 1000) / 2, () => this.checkStates()),
      sched.every(cfg.probeIntervalMs, () => void this.probe()),
    )
    void this.heartbeat()
  }

  stop(): void {
    for (const c of this.cancels.splice(0)) c()
  }

  async heartbeat(): Promise<void> {
    const { store, cfg } = this.d
    const base = this.d.describe()
    const extra = store.get(labelsKey(base.name))
    const labels = { ...base.labels, ...((extra && labelsCodec.valueOf(extra)) ?? {}) }
    const value: NodeValue = { ...base, labels, coordinate: this.vivaldi.coord }
    try {
      await store.put(`${NODE_PREFIX}${store.self}`, nodeCodec.encode(value), { ttlMs: cfg.nodeTtlMs })
    } catch (err) {
      this.d.logger.error({ err }, 'heartbeat write failed')
    }
  }

  state(peer: string): MemberState | undefined {
    if (peer === this.d.store.self) return 'alive'
    const rec = this.d.store.listHeld(`${NODE_PREFIX}${peer}`).find((r) => r.key === `${NODE_PREFIX}${peer}`)
    return rec ? memberState(this.silentMs(rec), this.d.cfg) : undefined
  }

  hosts(): HostView[] {
    const now = this.d.sched.now()
    const out: HostView[] = []
    for (const rec of this.d.store.listHeld(NODE_PREFIX)) {
      const v = nodeCodec.valueOf(rec)
      if (!v) continue
      const self = rec.owner === this.d.store.self
      const silentMs = self ? 0 : this.silentMs(rec)
      const measured = this.measured.get(rec.owner)
      out.push({
        name: v.name,
        peerId: rec.owner,
        address: v.address,
        state: self ? 'alive' : memberState(silentMs, this.d.cfg),
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

  private silentMs(rec: StoreRecord): number {
    const heard = this.lastHeard.get(rec.owner) ?? rec.version.wall
    return Math.max(0, this.d.sched.now() - heard)
  }

  private checkStates(): void {
    const seen = new Set<string>()
    for (const rec of this.d.store.listHeld(NODE_PREFIX)) {
      if (rec.owner === this.d.store.self) continue
      seen.add(rec.owner)
      const state = memberState(this.silentMs(rec), this.d.cfg)
      const prev = this.states.get(rec.owner)
      if (state === prev) continue
      this.states.set(rec.owner, state)
      const name = nodeCodec.valueOf(rec)?.name
      const log = state === 'alive' ? this.d.logger.info : this.d.logger.warn
      log.call(
        this.d.logger,
        { peer: rec.owner, name, from: prev ?? 'unknown', to: state },
        `host ${name} is ${state}`,
      )
    }
    for (const peer of this.states.keys()) {
      if (!seen.has(peer)) {
        this.states.delete(peer)
        this.lastHeard.delete(peer)
        this.vivaldi = forgetPeer(this.vivaldi, peer)
        this.measured.delete(peer)
      }
    }
  }

  /** One RTT probe of a random connected peer whose coordinate we know. */
  private async probe(): Promise<void> {
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

// to the microsecond: kernel RTTs between namespaces are tens of microseconds
const round = (x: number) => Math.round(x * 1000) / 1000
