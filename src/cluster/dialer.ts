import type { Logger } from '../lib/log.js'
import { nodeCodec } from '../store/codecs.js'
import { NODE_PREFIX, type ReadableStore } from '../store/types.js'
import type { Scheduler } from './transport.js'

// The agent's own re-dial loop: libp2p stops redialing a peer after a few
// failures, but a cluster member must keep trying its bootstrap list and the
// hosts it knows from nodes/ records for as long as it runs.

export interface DialerConfig {
  redialMinMs: number
  redialMaxMs: number
  targetPeers: number
  dialTimeoutMs: number
}

export interface DialTransport {
  /** resolves to the peer id reached */
  dial(addr: string, timeoutMs: number): Promise<string>
  dialPeer(peer: string, addrs: string[], timeoutMs: number): Promise<void>
  isConnected(peer: string): boolean
  peers(): string[]
}

interface Backoff {
  failures: number
  nextAt: number
}

/** Exponential backoff with jitter: min·2^failures, capped, scaled by 0.5..1. */
export function nextDelay(
  failures: number,
  cfg: Pick<DialerConfig, 'redialMinMs' | 'redialMaxMs'>,
  rng: () => number,
) {
  const base = Math.min(cfg.redialMaxMs, cfg.redialMinMs * 2 ** Math.min(failures, 30))
  return Math.round(base * (0.5 + rng() / 2))
}

export class Dialer {
  private readonly backoff = new Map<string, Backoff>()
  private readonly inflight = new Set<string>()
  /** bootstrap address -> peer id it turned out to be */
  private readonly learned = new Map<string, string>()
  private cancel?: () => void

  constructor(
    private readonly t: DialTransport,
    private readonly store: ReadableStore,
    private readonly bootstrap: string[],
    private readonly sched: Scheduler,
    private readonly rng: () => number,
    private readonly cfg: DialerConfig,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.cancel = this.sched.every(this.cfg.redialMinMs, () => this.tick())
    this.tick()
  }

  stop(): void {
    this.cancel?.()
  }

  tick(): void {
    const now = this.sched.now()
    const connected = this.t.peers().length
    // Bootstrap entries are dialed until one of them answers; known hosts until we have enough peers.
    if (connected === 0) {
      for (const addr of this.bootstrap) {
        const peer = this.learned.get(addr)
        if (peer && this.t.isConnected(peer)) continue
        this.attempt(`addr:${addr}`, now, async () => {
          this.learned.set(addr, await this.t.dial(addr, this.cfg.dialTimeoutMs))
        })
      }
    }
    if (connected >= this.cfg.targetPeers) return
    const known = this.store
      .list(NODE_PREFIX)
      .filter((r) => r.owner !== this.store.self && !this.t.isConnected(r.owner))
      .sort(() => this.rng() - 0.5)
    for (const r of known.slice(0, this.cfg.targetPeers - connected)) {
      const addrs = nodeCodec.valueOf(r)?.multiaddrs
      if (!addrs?.length) continue
      this.attempt(`peer:${r.owner}`, now, () => this.t.dialPeer(r.owner, addrs, this.cfg.dialTimeoutMs))
    }
  }

  private attempt(key: string, now: number, dial: () => Promise<void>): void {
    const b = this.backoff.get(key)
    if (this.inflight.has(key) || (b && now < b.nextAt)) return
    this.inflight.add(key)
    dial().then(
      () => {
        this.backoff.delete(key)
        this.inflight.delete(key)
      },
      (err: Error) => {
        const failures = (b?.failures ?? 0) + 1
        this.backoff.set(key, {
          failures,
          nextAt: this.sched.now() + nextDelay(failures, this.cfg, this.rng),
        })
        this.inflight.delete(key)
        this.logger.debug({ target: key, failures, err: err.message }, 'dial failed')
      },
    )
  }
}
