import { availableParallelism, totalmem } from 'node:os'
import { isPlexusError, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import { loopLoad } from '../lib/loop-load.js'
import type { Metrics } from '../lib/metrics.js'
import type { LocalStore } from '../store/store.js'
import { NODE_PREFIX } from '../store/types.js'
import type { ClusterConfig } from './config.js'
import { Dialer } from './dialer.js'
import { loadOrCreatePeerKey } from './identity.js'
import type { InspectHandler, Inspector } from './inspect.js'
import { measureRtt } from './kernel-rtt.js'
import { loadClusterKey } from './key.js'
import { Libp2pTransport } from './libp2p-transport.js'
import { type HostView, Membership } from './membership.js'
import { clusterMetrics, membershipGauges } from './metrics.js'
import type { Refusal, RefusalSource } from './refusals.js'
import { Replicator } from './replicator.js'
import { realScheduler } from './transport.js'

export interface ClusterDeps {
  config: {
    name: string
    stateDir: string
    underlayAddress?: string
    labels: Record<string, string>
    cluster: ClusterConfig
  }
  logger: Logger
  metrics: Metrics
  store: LocalStore
  startedAt: Date
  version: string
}

/** What the API reads about the cluster. */
export interface MembersView {
  hosts(): HostView[]
  /** local writes waiting to be gossiped, and the bound past which the API refuses writes */
  replicationBacklog(): ReplicationBacklog
}

/**
 * What the API reads before it takes a write: local writes waiting for gossip
 * and their bound, and how busy this agent's event loop was over the last
 * second and the share past which writes wait (`loop` absent: standalone).
 */
export interface ReplicationBacklog {
  pending: number
  limit: number
  loop?: { busy: number; limit: number }
}

/**
 * Past this share of a second spent running callbacks, writes are refused
 * (503) until the loop has room again: every write costs every host a
 * signature check and a merge, and a loop with no room answers the cluster's
 * probes and sync pages late (at 50,000 records on 5 loaded agents: 1.5–3.5 s
 * late, hosts judged dead, sync rounds failing).
 */
const WRITE_LOOP_LIMIT = 0.9

const PING_TIMEOUT_MS = 2000
const DIAL_TIMEOUT_MS = 5000

const ip4Of = (addr: string) => /^\/ip4\/([\d.]+)\//.exec(addr)?.[1]
const usable = (ip: string | undefined) => ip !== undefined && ip !== '0.0.0.0' && !ip.startsWith('127.')

/**
 * The cluster side of the agent: libp2p transport, replication, membership,
 * re-dialing. Without a cluster key the host runs standalone (its store and
 * node record work locally, nothing is dialed or accepted).
 */
export class ClusterService implements MembersView, Inspector, RefusalSource {
  readonly membership: Membership
  private readonly replicator?: Replicator
  private readonly dialer?: Dialer
  private readonly loopBusy = loopLoad()

  private constructor(
    private readonly d: ClusterDeps,
    readonly transport: Libp2pTransport | undefined,
  ) {
    const { config, logger, store } = d
    const c = config.cluster
    const t = transport
    this.membership = new Membership({
      store,
      sched: realScheduler,
      rng: Math.random,
      logger: logger.child({ component: 'membership' }),
      cfg: c,
      describe: () => this.describe(),
      measureRtt: t ? (peer) => measureRtt(t, peer, PING_TIMEOUT_MS) : undefined,
      ...(t
        ? {
            ping: (peer, timeoutMs) => t.ping(peer, timeoutMs),
            onDisconnect: (fn) => t.onDisconnect(fn),
            reset: (peer) => t.reset(peer),
          }
        : {}),
      connectedPeers: () => t?.peers() ?? [],
    })
    membershipGauges(
      d.metrics,
      () => this.membership.hosts(),
      () => this.membership.localHealth,
    )
    if (!t) return
    this.replicator = new Replicator(
      store,
      t,
      realScheduler,
      Math.random,
      {
        syncIntervalMs: c.syncIntervalMs,
        requestTimeoutMs: DIAL_TIMEOUT_MS,
        answeredSince: (peer, since) => this.membership.answeredSince(peer, since),
      },
      clusterMetrics(d.metrics),
      logger.child({ component: 'replicator' }),
    )
    this.dialer = new Dialer(
      t,
      store,
      c.bootstrap,
      realScheduler,
      Math.random,
      { ...c, dialTimeoutMs: DIAL_TIMEOUT_MS },
      logger.child({ component: 'dialer' }),
    )
  }

  static async create(d: ClusterDeps): Promise<ClusterService> {
    let psk: Uint8Array
    try {
      psk = await loadClusterKey(d.config.cluster)
    } catch (err) {
      if (!isPlexusError(err, 'PLX_CLUSTER_NO_KEY')) throw err
      d.logger.warn('no cluster key configured: running standalone (run `plexctl cluster init` to make one)')
      return new ClusterService(d, undefined)
    }
    const transport = await Libp2pTransport.create({
      privateKey: await loadOrCreatePeerKey(d.config.stateDir),
      psk,
      listen: d.config.cluster.listen,
      announce: d.config.cluster.announce,
      logger: d.logger.child({ component: 'libp2p' }),
      metrics: clusterMetrics(d.metrics),
    })
    return new ClusterService(d, transport)
  }

  async start(): Promise<void> {
    this.replicator?.start()
    await this.transport?.start()
    this.membership.start()
    this.dialer?.start()
    this.d.logger.info(
      { peerId: this.d.store.self, addrs: this.transport?.multiaddrs() ?? [] },
      'cluster started',
    )
  }

  async stop(): Promise<void> {
    this.dialer?.stop()
    this.membership.stop()
    this.replicator?.stop()
    await this.transport?.stop()
  }

  hosts(): HostView[] {
    return this.membership.hosts()
  }

  /** answers inspect questions from members only: the key opens a connection, a node record makes a member */
  serve(handler: InspectHandler): void {
    this.transport?.serveInspect(async (from, question) => {
      if (!this.d.store.get(`${NODE_PREFIX}${from}`))
        throw new PlexusError('PLX_INSPECT_FORBIDDEN', `${from} is not a member of this cluster`)
      return handler(from, question)
    })
  }

  ask(peer: string, question: unknown, timeoutMs: number): Promise<unknown> {
    if (!this.transport)
      return Promise.reject(new PlexusError('PLX_INSPECT_UNAVAILABLE', 'standalone agent: no cluster to ask'))
    return this.transport.inspect(peer, question, timeoutMs)
  }

  /** the handshakes refused last (`plexctl doctor`'s cluster-key check); standalone: undefined */
  refusals(): Refusal[] | undefined {
    return this.transport?.refusals()
  }

  replicationBacklog(): ReplicationBacklog {
    // standalone: nothing to replicate, nothing to wait for
    if (!this.replicator) return { pending: 0, limit: Number.POSITIVE_INFINITY }
    return { ...this.replicator.backlog(), loop: { busy: this.loopBusy(), limit: WRITE_LOOP_LIMIT } }
  }

  private describe() {
    const { config, startedAt, version } = this.d
    const all = this.transport?.multiaddrs() ?? []
    // loopback addresses are useless to other hosts unless that is all there is (tests on one machine)
    const external = all.filter((a) => !ip4Of(a)?.startsWith('127.'))
    const multiaddrs = external.length ? external : all
    const address =
      config.underlayAddress ??
      [...config.cluster.announce, ...config.cluster.listen, ...multiaddrs].map(ip4Of).find(usable) ??
      ip4Of(multiaddrs[0] ?? '') ??
      '127.0.0.1'
    return {
      name: config.name,
      address,
      multiaddrs,
      labels: config.labels,
      capacity: { cpus: availableParallelism(), memoryMb: Math.round(totalmem() / 2 ** 20) },
      version,
      startedAt: startedAt.toISOString(),
    }
  }
}
