import { generateKeyPair } from '@libp2p/crypto/keys'
import { Metrics } from '../../lib/metrics.js'
import { LocalStore, type StoreSnapshot } from '../../store/store.js'
import { createSigner, verifyRecordSignature } from '../identity.js'
import { clusterMetrics } from '../metrics.js'
import { Replicator } from '../replicator.js'
import type { GossipVerdict, Transport, TransportHandlers } from '../transport.js'
import { EventQueue, seededRng } from './clock.js'

// A simulated network for the replication code: every host runs the real
// LocalStore and Replicator; only the Transport is simulated. Links have
// seeded random latency and loss; partitions drop traffic between groups
// (connections stay up, like a stalled TCP stream, so only anti-entropy can
// repair what was missed); crashes lose everything but the last snapshot.
// Gossip follows gossipsub's shape: each host relays a new, accepted message
// to a fixed random subset (its mesh) of its connections, after validation.

export interface SimConfig {
  seed: number
  hosts: number
  /**
   * hosts that write a node record at cold start; the rest only relay and
   * sync. Digest size grows with the number of writers (Scuttlebutt keeps one
   * watermark per origin), which is what bounds the simulator's speed.
   */
  writers: number
  /** connections each host opens to random others (links are symmetric) */
  dialsPerHost: number
  /** every host linked to every other, as the agent does below its target of 16 peers (small clusters) */
  fullMesh?: boolean
  /** gossip mesh bound (gossipsub D_hi): a host relays to at most this many of its links */
  meshMax: number
  latencyMs: [number, number]
  /** probability a message is lost */
  loss: number
  syncIntervalMs: number
  requestTimeoutMs: number
  reapAfterMs: number
}

export const DEFAULT_SIM: SimConfig = {
  seed: 1,
  hosts: 1000,
  writers: 100,
  dialsPerHost: 3,
  meshMax: 12,
  latencyMs: [5, 40],
  loss: 0.01,
  // the agent's default (cluster.syncIntervalMs), so a heal measured here is one the agent gets
  syncIntervalMs: 2000,
  requestTimeoutMs: 1000,
  reapAfterMs: 3_600_000,
}

const EPOCH = 1_750_000_000_000

export class SimHost {
  store!: LocalStore
  replicator!: Replicator
  readonly metrics = new Metrics()
  readonly transport: SimTransport
  up = false
  /** this host's clock minus the simulator's (bounded drift, for the lease simulation) */
  clockOffsetMs = 0
  /** what a crash leaves behind (the last snapshot on disk) */
  disk?: StoreSnapshot
  private sched!: ReturnType<EventQueue['scheduler']>

  constructor(
    readonly net: SimNetwork,
    readonly id: string,
    readonly index: number,
    readonly signer: ReturnType<typeof createSigner>,
  ) {
    this.transport = new SimTransport(net, this)
  }

  boot(): void {
    const q = this.net.queue
    this.sched = q.scheduler()
    this.store = new LocalStore(
      {
        signer: this.signer,
        verify: verifyRecordSignature,
        metrics: this.metrics,
        now: () => this.now(),
        reapAfterMs: this.net.cfg.reapAfterMs,
      },
      this.disk,
    )
    this.replicator = new Replicator(
      this.store,
      this.transport,
      this.sched,
      this.net.rng,
      {
        syncIntervalMs: this.net.cfg.syncIntervalMs,
        requestTimeoutMs: this.net.cfg.requestTimeoutMs,
      },
      clusterMetrics(this.metrics),
    )
    this.replicator.start()
    this.up = true
  }

  crash(): void {
    this.disk = this.store.snapshot()
    this.replicator.stop()
    this.sched.cancelAll()
    this.transport.reset()
    this.up = false
  }

  get scheduler() {
    return this.sched
  }

  /** this host's wall clock */
  now(): number {
    return this.net.queue.now() + this.clockOffsetMs
  }
}

export class SimTransport implements Transport {
  handlers?: TransportHandlers
  private seen = new Set<string>()
  private seq = 0

  constructor(
    private readonly net: SimNetwork,
    private readonly host: SimHost,
  ) {}

  get self(): string {
    return this.host.id
  }

  setHandlers(h: TransportHandlers): void {
    this.handlers = h
  }

  reset(): void {
    this.seen = new Set()
  }

  publish(data: Uint8Array): void {
    const id = `${this.self}/${this.seq++}/${this.net.queue.now()}`
    this.seen.add(id)
    this.relay(id, data, undefined)
  }

  /** A gossip message arriving from a neighbour: dedupe, validate (+merge), relay if accepted. */
  receive(id: string, data: Uint8Array, from: string): GossipVerdict | undefined {
    if (this.seen.has(id) || !this.handlers) return undefined
    this.seen.add(id)
    const v = this.handlers.gossip(from, data)
    if (v === 'accept') this.relay(id, data, from)
    return v
  }

  private relay(id: string, data: Uint8Array, except: string | undefined): void {
    for (const peer of this.net.mesh(this.self)) {
      if (peer !== except) this.net.send(this.self, peer, (to) => to.transport.receive(id, data, this.self))
    }
  }

  request(peer: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const q = this.net.queue
    return new Promise((resolve, reject) => {
      let done = false
      const timer = this.host.scheduler.after(timeoutMs, () => {
        done = true
        q.settled()
        reject(new Error('sim: request timed out'))
      })
      this.net.send(this.self, peer, (server) => {
        let answer: Uint8Array
        try {
          answer = server.transport.handlers?.request(this.self, data) as Uint8Array
        } catch {
          return
        }
        this.net.send(peer, this.self, () => {
          if (done) return
          done = true
          timer()
          q.settled()
          resolve(answer)
        })
      })
    })
  }

  peers(): string[] {
    return this.net.neighbours(this.self).filter((p) => this.net.host(p).up)
  }
}

export class SimNetwork {
  readonly queue = new EventQueue(EPOCH)
  readonly rng: () => number
  readonly hosts: SimHost[] = []
  private readonly byId = new Map<string, SimHost>()
  private readonly links = new Map<string, string[]>()
  private readonly meshes = new Map<string, string[]>()
  private group = new Map<string, number>()
  /** counts for reports */
  readonly stats = { sent: 0, lost: 0, cut: 0 }

  private constructor(readonly cfg: SimConfig) {
    this.rng = seededRng(cfg.seed)
  }

  static async create(cfg: SimConfig): Promise<SimNetwork> {
    const net = new SimNetwork(cfg)
    for (let i = 0; i < cfg.hosts; i++) {
      // keys are not derived from the seed (libp2p generates them from the OS); choices in the run are
      const signer = createSigner(await generateKeyPair('Ed25519'))
      const h = new SimHost(net, signer.self, i, signer)
      net.hosts.push(h)
      net.byId.set(h.id, h)
      net.links.set(h.id, [])
    }
    for (const h of net.hosts) {
      if (cfg.fullMesh) {
        net.links.set(
          h.id,
          net.hosts.filter((o) => o !== h).map((o) => o.id),
        )
        continue
      }
      for (let k = 0; k < cfg.dialsPerHost; k++) {
        const other = net.hosts[Math.floor(net.rng() * cfg.hosts)] as SimHost
        if (other !== h && !net.links.get(h.id)?.includes(other.id)) {
          net.links.get(h.id)?.push(other.id)
          net.links.get(other.id)?.push(h.id)
        }
      }
    }
    for (const h of net.hosts) {
      const shuffled = [...(net.links.get(h.id) ?? [])].sort(() => net.rng() - 0.5)
      net.meshes.set(h.id, shuffled.slice(0, cfg.meshMax))
    }
    return net
  }

  host(id: string): SimHost {
    return this.byId.get(id) as SimHost
  }

  neighbours(id: string): string[] {
    return this.links.get(id) ?? []
  }

  mesh(id: string): string[] {
    return this.meshes.get(id) ?? []
  }

  /** Boots a host (first start or restart from its disk) and tells both ends of each link. */
  start(h: SimHost): void {
    h.boot()
    for (const p of this.neighbours(h.id)) {
      const other = this.host(p)
      if (!other.up) continue
      this.send(h.id, p, (to) => to.transport.handlers?.connected(h.id))
      this.send(p, h.id, (to) => to.transport.handlers?.connected(p))
    }
  }

  /** Groups of host indexes that can talk; hosts not listed form one more group. */
  partition(groups: number[][]): void {
    this.group = new Map()
    groups.forEach((g, i) => {
      for (const idx of g) this.group.set((this.hosts[idx] as SimHost).id, i + 1)
    })
  }

  heal(): void {
    this.group = new Map()
  }

  private reachable(a: string, b: string): boolean {
    return (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0)
  }

  send(from: string, to: string, deliver: (to: SimHost) => void): void {
    this.stats.sent++
    if (this.rng() < this.cfg.loss) {
      this.stats.lost++
      return
    }
    const [lo, hi] = this.cfg.latencyMs
    this.queue.at(lo + this.rng() * (hi - lo), () => {
      const target = this.host(to)
      if (!target.up || !this.host(from).up) return
      if (!this.reachable(from, to)) {
        this.stats.cut++
        return
      }
      deliver(target)
    })
  }

  now(): number {
    return this.queue.now()
  }

  /** Advances simulated time by ms. */
  run(ms: number): Promise<void> {
    return this.queue.runUntil(this.queue.now() + ms)
  }

  /** Advances in steps until pred holds (returns the simulated ms it took) or maxMs passes (returns -1). */
  async runUntil(pred: () => boolean, stepMs: number, maxMs: number): Promise<number> {
    const start = this.now()
    while (this.now() - start < maxMs) {
      if (pred()) return this.now() - start
      await this.run(stepMs)
    }
    return pred() ? this.now() - start : -1
  }
}
