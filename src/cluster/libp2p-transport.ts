import { noise } from '@chainsafe/libp2p-noise'
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { errorMessage, isPlexusError, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import { withDeadline } from './deadline.js'
import { withKeptKeyObject } from './identity.js'
import {
  decodeInspect,
  encodeInspect,
  INSPECT_PROTOCOL,
  INSPECT_SERVE_TIMEOUT_MS,
  type InspectAnswer,
  type InspectHandler,
  MAX_INSPECT_BYTES,
} from './inspect.js'
import { endpointText } from './kernel-rtt.js'
import type { ClusterMetrics } from './metrics.js'
import { echoProbes, PROBE_PROTOCOL, Probes } from './probe.js'
import { clusterProtector } from './protector.js'
import { type Refusal, RefusalLog } from './refusals.js'
import type { GossipVerdict, Transport, TransportHandlers } from './transport.js'
import { DELTA_TOPIC, MAX_GOSSIP_BYTES, MAX_SYNC_BYTES, SYNC_PROTOCOL } from './wire.js'

export interface Libp2pTransportOptions {
  privateKey: Ed25519PrivateKey
  psk: Uint8Array
  listen: string[]
  announce: string[]
  logger: Logger
  metrics: ClusterMetrics
}

const VERDICT: Record<GossipVerdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject,
}

const MAX_OUTBOUND_GOSSIP_BYTES = 32 * 1024 * 1024
/** gossip deltas this big or bigger are announced with IDONTWANT to mesh peers (load bursts, not heartbeats) */
const IDONTWANT_MIN_BYTES = 16 * 1024
/** how long an inbound /plexus/sync/1 stream may take to send its request */
const SYNC_SERVE_TIMEOUT_MS = 10_000

type Noop = (...args: unknown[]) => Noop
const noop: Noop = () => noop
const silentMetric = new Proxy({}, { get: () => noop })

/**
 * Gossipsub drops envelopes that fail its own checks (a signature, sender or
 * sequence number present under StrictNoSign) before our validator sees
 * them; its metrics hook is the only place that learns why. This register
 * forwards those to our metrics and discards every other one.
 */
function envelopeRejections(metrics: ClusterMetrics) {
  const invalid = {
    inc(labels?: { error?: string }) {
      const error = labels?.error ?? 'unknown'
      // ignore/reject verdicts come from our own validator, which counts them itself
      if (error !== 'ignore' && error !== 'reject')
        metrics.gossipMessages.inc({ verdict: 'reject', reason: `envelope_${error}` })
    },
    set: noop,
    addCollect: noop,
  }
  return {
    gauge: (cfg: { name: string }) =>
      cfg.name === 'gossipsub_msg_received_invalid_total' ? invalid : silentMetric,
    histogram: () => silentMetric,
    avgMinMax: () => silentMetric,
  }
}

async function createNode(o: Libp2pTransportOptions, refusals: RefusalLog) {
  return createLibp2p({
    privateKey: withKeptKeyObject(o.privateKey),
    addresses: { listen: o.listen, announce: o.announce },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Membership's probes check every peer's connection (and drop one that stops answering);
    // the monitor pinged every connection again every 10 s, a stream each: an idle agent of 10
    // spent 7.9 % of a core with it and 6.6 % without (60 s each, quiet machine).
    connectionMonitor: { enabled: false },
    connectionProtector: clusterProtector(o.psk, {
      refused(remote, err, direction) {
        o.metrics.connectionsRefused.inc()
        const r = refusals.add(remote, direction, err)
        o.logger.warn(
          { remote, direction, err: r.reason },
          r.kind === 'key-mismatch'
            ? 'refused connection: cluster key mismatch'
            : 'refused connection: failed handshake',
        )
      },
      failed(remote, err) {
        o.metrics.connectionErrors.inc()
        o.logger.warn({ remote, err: errorMessage(err) }, 'cluster connection failed and was closed')
      },
      ciphers: (delta) => o.metrics.ciphers.inc(delta),
    }),
    // no mDNS and no other discovery: peers come from config and the store (dialer.ts)
    peerDiscovery: [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // Every record a delta carries is signed by its owner and checked by the store before it is
        // merged or forwarded (the topic validator), and the connection is authenticated by noise
        // inside the private network. A message signature on top proved only who published the
        // delta, and cost a signature per publish and a key import and check per message on every
        // host (most of the gossip path's CPU in a loaded agent's profile). The message id is then
        // the digest of the data (gossipsub's default under StrictNoSign).
        globalSignaturePolicy: 'StrictNoSign',
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        fallbackToFloodsub: false,
        maxInboundDataLength: MAX_GOSSIP_BYTES + 4096,
        // IDONTWANT (gossipsub 1.2) only for deltas worth it: every message above the default 512
        // bytes (a node record, ~1 KB, every 10 s per host) cost one IDONTWANT to each mesh peer,
        // as many writes as the duplicates it saves.
        idontwantMinDataSize: IDONTWANT_MIN_BYTES,
        // The replicator stops publishing past a few MiB of unsent gossip
        // (backlogBytes); a peer that still lets this much pile up is stuck:
        // its stream is reset and anti-entropy catches it up after.
        maxOutboundBufferSize: MAX_OUTBOUND_GOSSIP_BYTES,
        metricsRegister: envelopeRejections(o.metrics) as never,
        metricsTopicStrToLabel: new Map([[DELTA_TOPIC, DELTA_TOPIC]]),
        // Hosts of one cluster often share a subnet or sit behind one NAT; the
        // IP-colocation penalty would graylist them, so it is off.
        scoreParams: { IPColocationFactorWeight: 0, IPColocationFactorThreshold: 1_000_000 },
      }),
    },
  })
}

type Node = Awaited<ReturnType<typeof createNode>>

/** The cluster Transport over libp2p: gossipsub deltas, /plexus/sync/1 request/response, ping. */
export class Libp2pTransport implements Transport {
  private handlers?: TransportHandlers
  private inspectHandler?: InspectHandler
  private readonly probes = new Probes({
    open: (peer, signal) => this.node.dialProtocol(peerIdFromString(peer), PROBE_PROTOCOL, { signal }),
    legacyPing: (peer, signal) => this.node.services.ping.ping(peerIdFromString(peer), { signal }),
  })

  private constructor(
    readonly node: Node,
    private readonly logger: Logger,
    private readonly metrics: ClusterMetrics,
    private readonly refused: RefusalLog,
  ) {}

  get self(): string {
    return this.node.peerId.toString()
  }

  static async create(o: Libp2pTransportOptions): Promise<Libp2pTransport> {
    const refused = new RefusalLog()
    const t = new Libp2pTransport(await createNode(o, refused), o.logger, o.metrics, refused)
    await t.wire()
    return t
  }

  private async wire(): Promise<void> {
    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.set(DELTA_TOPIC, (peer, msg) => {
      const h = this.handlers
      if (!h) return TopicValidatorResult.Ignore
      return VERDICT[h.gossip(peer.toString(), msg.data)]
    })
    pubsub.subscribe(DELTA_TOPIC)
    this.node.addEventListener('peer:connect', (e) => this.handlers?.connected(e.detail.toString()))
    this.onDisconnect((peer) => this.probes.disconnected(peer))
    // one stream per peer and direction; a few more let a new one open while a closed one is torn down
    await this.node.handle(PROBE_PROTOCOL, (stream) => echoProbes(stream), { maxInboundStreams: 4 })
    await this.node.handle(
      SYNC_PROTOCOL,
      async (stream, connection) => {
        const from = connection.remotePeer.toString()
        const lp = lpStream(stream, { maxDataLength: MAX_SYNC_BYTES })
        try {
          const req = await withDeadline(SYNC_SERVE_TIMEOUT_MS, (signal) => lp.read({ signal }))
          const h = this.handlers
          if (!h) throw new Error('not ready')
          await lp.write(h.request(from, req.subarray()))
          await stream.close()
        } catch (err) {
          stream.abort(err as Error)
        }
      },
      { maxInboundStreams: 64 },
    )
    await this.node.handle(
      INSPECT_PROTOCOL,
      (stream, connection) => this.answerInspect(stream, connection.remotePeer.toString()),
      {
        maxInboundStreams: 16,
      },
    )
  }

  /** sets the one handler of /plexus/inspect/1 questions (src/diag, through the cluster service) */
  serveInspect(handler: InspectHandler): void {
    this.inspectHandler = handler
  }

  private answerInspect(stream: Parameters<typeof lpStream>[0], from: string): Promise<void> {
    return withDeadline(INSPECT_SERVE_TIMEOUT_MS, (signal) => this.answerInspectWithin(stream, from, signal))
  }

  private async answerInspectWithin(
    stream: Parameters<typeof lpStream>[0],
    from: string,
    signal: AbortSignal,
  ): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_INSPECT_BYTES })
    try {
      const question = decodeInspect((await lp.read({ signal })).subarray())
      let answer: InspectAnswer
      try {
        if (!this.inspectHandler)
          throw new PlexusError('PLX_INSPECT_UNAVAILABLE', 'this agent answers no inspect questions')
        answer = { ok: true, result: await this.inspectHandler(from, question) }
      } catch (err) {
        answer = {
          ok: false,
          code: isPlexusError(err) ? err.code : 'PLX_INSPECT_FAILED',
          message: errorMessage(err),
        }
      }
      await lp.write(encodeInspect(answer), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** asks one question over /plexus/inspect/1; the whole exchange, dial included, within timeoutMs */
  inspect(peer: string, question: unknown, timeoutMs: number): Promise<unknown> {
    return withDeadline(timeoutMs, (signal) => this.inspectWithin(peer, question, timeoutMs, signal))
  }

  private async inspectWithin(
    peer: string,
    question: unknown,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<unknown> {
    let answer: InspectAnswer
    try {
      const stream = await this.node.dialProtocol(peerIdFromString(peer), INSPECT_PROTOCOL, { signal })
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_INSPECT_BYTES })
        await lp.write(encodeInspect(question), { signal })
        answer = decodeInspect((await lp.read({ signal })).subarray()) as InspectAnswer
        await stream.close({ signal })
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    } catch (err) {
      if (signal.aborted)
        throw new PlexusError('PLX_INSPECT_TIMEOUT', `no answer from ${peer} within ${timeoutMs} ms`, {
          peer,
        })
      if (isPlexusError(err)) throw err
      throw new PlexusError('PLX_INSPECT_FAILED', `inspect ${peer}: ${errorMessage(err)}`, { peer })
    }
    if (typeof answer !== 'object' || answer === null || typeof answer.ok !== 'boolean')
      throw new PlexusError('PLX_INSPECT_BAD_MESSAGE', `malformed inspect answer from ${peer}`, { peer })
    if (!answer.ok) {
      // the code is the remote's word: only a well-formed one is passed on as ours
      const code = /^PLX_[A-Z0-9_]{1,60}$/.test(String(answer.code))
        ? String(answer.code)
        : 'PLX_INSPECT_FAILED'
      throw new PlexusError(code, `${peer}: ${String(answer.message).slice(0, 500)}`, { peer })
    }
    return answer.result
  }

  setHandlers(h: TransportHandlers): void {
    this.handlers = h
  }

  async start(): Promise<void> {
    await this.node.start()
  }

  async stop(): Promise<void> {
    this.probes.stop()
    await this.node.stop()
  }

  publish(data: Uint8Array): void {
    this.node.services.pubsub.publish(DELTA_TOPIC, data).catch((err: unknown) => {
      this.metrics.gossipPublishFailures.inc()
      this.logger.debug({ err: errorMessage(err) }, 'gossip publish failed')
    })
  }

  backlogBytes(): number {
    // gossipsub's per-peer outbound streams are public on its class, not on its interface
    const pubsub = this.node.services.pubsub as unknown as {
      streamsOutbound?: Map<string, { rawStream: { writeBufferLength: number } }>
    }
    let sum = 0
    for (const s of pubsub.streamsOutbound?.values() ?? []) sum += s.rawStream.writeBufferLength
    return sum
  }

  request(peer: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return withDeadline(timeoutMs, (signal) => this.requestWithin(peer, data, signal))
  }

  private async requestWithin(peer: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const stream = await this.node.dialProtocol(peerIdFromString(peer), SYNC_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_BYTES })
      await lp.write(data, { signal })
      const res = await lp.read({ signal })
      await stream.close({ signal })
      return res.subarray()
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  reset(peer: string): void {
    this.node.hangUp(peerIdFromString(peer)).catch(() => {})
  }

  peers(): string[] {
    return this.node.getPeers().map((p) => p.toString())
  }

  isConnected(peer: string): boolean {
    return this.node.getConnections(peerIdFromString(peer)).length > 0
  }

  /** Dials a multiaddr (with or without /p2p/<id>); resolves to the peer id reached. */
  async dial(addr: string, timeoutMs: number): Promise<string> {
    const conn = await withDeadline(timeoutMs, (signal) => this.node.dial(multiaddr(addr), { signal }))
    return conn.remotePeer.toString()
  }

  /** Dials a known peer through the addresses from its node record. */
  async dialPeer(peer: string, addrs: string[], timeoutMs: number): Promise<void> {
    const id = peerIdFromString(peer)
    const p2p = `/p2p/${peer}`
    await this.node.peerStore.merge(id, {
      multiaddrs: addrs.map((a) => multiaddr(a.endsWith(p2p) ? a.slice(0, -p2p.length) : a)),
    })
    await withDeadline(timeoutMs, (signal) => this.node.dial(id, { signal }))
  }

  /** The remote TCP endpoints of this peer's open connections, as sock_diag names them (kernel-rtt.ts). */
  remoteEndpoints(peer: string): string[] {
    return this.node.getConnections(peerIdFromString(peer)).flatMap((conn) => {
      const parts = conn.remoteAddr.getComponents()
      const ip = parts.find((p) => p.name === 'ip4' || p.name === 'ip6')?.value
      const port = parts.find((p) => p.name === 'tcp')?.value
      return ip && port ? [endpointText(ip, port)] : []
    })
  }

  /** Calls fn with the peer when this host's last connection to it closes; returns cancel. */
  onDisconnect(fn: (peer: string) => void): () => void {
    const listener = (e: CustomEvent<{ toString(): string }>) => fn(e.detail.toString())
    this.node.addEventListener('peer:disconnect', listener)
    return () => this.node.removeEventListener('peer:disconnect', listener)
  }

  /** Round-trip time in ms over the peer's probe stream (probe.ts; libp2p ping to an earlier release). */
  async ping(peer: string, timeoutMs: number): Promise<number> {
    return withDeadline(timeoutMs, (signal) => this.probes.ping(peer, signal))
  }

  /** the handshakes refused last, oldest first (refusals.ts) */
  refusals(): Refusal[] {
    return this.refused.list()
  }

  multiaddrs(): string[] {
    return this.node.getMultiaddrs().map((m) => m.toString())
  }
}
