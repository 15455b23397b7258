import { createServer, type Server, type Socket } from 'node:net'
import { ConnectionGate, type GateEvent } from '../lib/conn-gate.js'
import { isPending, type Next, type Reply } from './chain.js'
import type { AnswerRecorder } from './metrics.js'
import { type BatchSocket, closeBatchSocket, openBatchSocket, udpAddon } from './udp.js'
import {
  errorReply,
  headerOnlyReply,
  parseQuery,
  type Query,
  RCODE_BADVERS,
  RCODE_SERVFAIL,
  replyLimit,
  truncated,
} from './wire.js'

export interface ServerOptions {
  port: number
  /** TCP connections open at once; more are refused (closed) */
  maxTcpConnections: number
  /** TCP connections one client address may hold; more are refused (closed) */
  maxTcpPerClient: number
  /**
   * time for each whole query, from the connect or the previous query: a
   * connection that has not delivered one complete message by then is closed,
   * however many bytes it dripped in between (RFC 7766 suggests seconds)
   */
  tcpMessageMs: number
}

export interface ServerStats {
  udpQueries: number
  tcpQueries: number
  malformed: number
  errors: number
  tcpConnections: number
  /** TCP connections closed at once: the client already held its share, or all were taken */
  tcpRefused: number
  /** TCP connections closed because no whole query arrived in time (idle or dripping) */
  tcpTimedOut: number
  /** UDP replies dropped because the socket's send buffer and the queue behind it were full */
  udpDropped: number
}

const MAX_TCP_BUFFER = 65535 + 2

/** the chain that answers an asker, by its source address: its networks' names only (src/dns/scope.ts) */
export interface ChainFor {
  /** an IPv4 address as an unsigned integer; 0 for an IPv6 sender (the UDP path's META_PEER4) */
  v4(address: number): Next
  /** an address as text (TCP's remoteAddress) */
  text(address: string): Next
}

const GATE_STAT = {
  accepted: 'tcpConnections',
  refused: 'tcpRefused',
  timedOut: 'tcpTimedOut',
} as const satisfies Record<GateEvent, keyof ServerStats>

/**
 * UDP and TCP listeners on one address, handing parsed queries to the asker's chain.
 * UDP goes through the native batching socket (src/dns/udp.ts): one JS call per
 * batch of datagrams, replies written into its output slots. Nothing a client
 * sends can throw out of here: bad packets are answered (FORMERR/NOTIMP when an
 * id is readable) or dropped, and a handler failure is SERVFAIL.
 */
export class DnsListener {
  private udp?: BatchSocket
  private tcp?: Server
  private readonly gate: ConnectionGate

  constructor(
    readonly address: string,
    private readonly opts: ServerOptions,
    private readonly chains: ChainFor,
    private readonly stats: ServerStats,
    private readonly recorder?: AnswerRecorder,
  ) {
    this.gate = new ConnectionGate(
      {
        maxConnections: opts.maxTcpConnections,
        maxPerClient: opts.maxTcpPerClient,
        messageMs: opts.tcpMessageMs,
      },
      (e) => this.stats[GATE_STAT[e]]++,
    )
  }

  /** Binds UDP and TCP; rejects (leaving nothing bound) if either fails. */
  async listen(): Promise<void> {
    // synchronous: the socket is created in the namespace this JS turn runs in
    const udp = openBatchSocket(this.address, this.opts.port, (n) => this.onBatch(udp, n))
    const tcp = createServer((s) => this.onTcp(s))
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen({ port: udp.port, host: this.address }, () => {
          tcp.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      await closeBatchSocket(udp)
      throw err
    }
    // counted only once bound: a failed bind is retried by the caller, not an error of a running server
    tcp.on('error', () => this.stats.errors++)
    this.udp = udp
    this.tcp = tcp
  }

  /** the bound port (differs from opts.port when that is 0, in tests) */
  get port(): number {
    return this.udp?.port ?? this.opts.port
  }

  /** what the UDP socket counted itself (sends the kernel refused, replies dropped) */
  udpCounts(): { errors: number; dropped: number } {
    const s = this.udp?.stats()
    return { errors: s?.errors ?? 0, dropped: s?.dropped ?? 0 }
  }

  async close(): Promise<void> {
    this.gate.destroyAll()
    const udp = this.udp
    if (udp) {
      // the socket's own counters outlive it in the shared stats
      const { errors, dropped } = this.udpCounts()
      this.stats.errors += errors
      this.stats.udpDropped += dropped
    }
    this.udp = undefined
    await Promise.all([
      udp ? closeBatchSocket(udp) : undefined,
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ])
    this.tcp = undefined
  }

  /**
   * n datagrams are in udp's input slots: answer each into its output slot
   * (the socket sends them all when this returns). A reply that is not ready
   * yet (forwarded) is sent on its own later, to a copy of the sender's address.
   */
  private onBatch(udp: BatchSocket, n: number): void {
    const { SLOT_SIZE, META_STRIDE, META_LEN, META_TRUNC, META_OUT, META_PEER4 } = udpAddon()
    const { input, output, meta } = udp
    for (let i = 0; i < n; i++) {
      const m = i * META_STRIDE
      const off = i * SLOT_SIZE
      this.stats.udpQueries++
      // bigger than a slot: no DNS query is, and the rest of it is gone
      if (meta[m + META_TRUNC]) {
        this.stats.malformed++
        continue
      }
      const r = answer(
        input.subarray(off, off + meta[m + META_LEN]!),
        false,
        this.chains.v4(meta[m + META_PEER4]! >>> 0),
        this.stats,
        this.recorder,
      )
      if (r === undefined) continue
      if (isPending(r)) {
        const peer = udp.peer(i)
        void r.then((b) => udp.sendTo(b, peer))
        continue
      }
      // fits: UDP replies are capped at MAX_UDP_PAYLOAD (wire.ts), far below a slot
      output.set(r, off)
      meta[m + META_OUT] = r.length
    }
  }

  private onTcp(s: Socket): void {
    const deadline = this.gate.admit(s, s.remoteAddress ?? '')
    if (!deadline) return
    s.setNoDelay(true)
    s.on('error', () => s.destroy())
    const send = (out: Buffer): void => {
      if (s.destroyed) return
      const head = Buffer.allocUnsafe(2)
      head.writeUInt16BE(out.length)
      s.cork()
      s.write(head)
      s.write(out)
      s.uncork()
    }
    // one asker per connection: its chain is found once
    const chain = this.chains.text(s.remoteAddress ?? '')
    let buf: Buffer = Buffer.alloc(0)
    s.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        // a frame shorter than a header cannot be DNS: this is not a DNS client, hang up
        if (len < 12) {
          this.stats.malformed++
          s.destroy()
          return
        }
        if (buf.length < len + 2) break
        const msg = buf.subarray(2, len + 2)
        buf = buf.subarray(len + 2)
        deadline.received()
        this.stats.tcpQueries++
        const r = answer(msg, true, chain, this.stats, this.recorder)
        if (r === undefined) deadline.answered()
        else if (isPending(r))
          void r.then((b) => {
            deadline.answered()
            send(b)
          })
        else {
          deadline.answered()
          send(r)
        }
      }
      if (buf.length > MAX_TCP_BUFFER) s.destroy()
    })
  }
}

/**
 * Parse, run the chain, enforce the size limit. Returns the reply, a promise of
 * it (never rejected: a failure is SERVFAIL), or undefined when nothing is sent.
 */
export function answer(
  msg: Buffer,
  tcp: boolean,
  chain: Next,
  stats: ServerStats,
  recorder?: AnswerRecorder,
): Reply | undefined {
  const started = recorder ? performance.now() : 0
  const parsed = parseQuery(msg, tcp)
  if (!parsed.ok) {
    stats.malformed++
    return parsed.rcode >= 0 ? headerOnlyReply(parsed.id, parsed.flags, parsed.rcode) : undefined
  }
  const q = parsed.query
  let r: Reply
  try {
    r = q.ednsVersion > 0 ? errorReply(q, RCODE_BADVERS) : chain(q)
  } catch {
    stats.errors++
    r = errorReply(q, RCODE_SERVFAIL)
  }
  if (!isPending(r)) return recorded(fit(q, r), q, started, recorder)
  // the stages still pending (forward: a retry upstream, the SERVFAIL question) and fit
  // read q.buf later, but msg is only lent (a UDP slot is refilled by the next batch)
  q.buf = Buffer.from(msg)
  return r.then(
    (b) => recorded(fit(q, b), q, started, recorder),
    () => {
      stats.errors++
      return recorded(errorReply(q, RCODE_SERVFAIL), q, started, recorder)
    },
  )
}

function recorded(reply: Buffer, q: Query, started: number, recorder: AnswerRecorder | undefined): Buffer {
  recorder?.answered(q.tcp, q.qtype, reply.readUInt16BE(2) & 0xf, started)
  return reply
}

function fit(q: Query, b: Buffer): Buffer {
  return b.length <= replyLimit(q)
    ? b
    : truncated(q, b.readUInt16BE(2) & 0xf, (b.readUInt16BE(2) & 0x0400) !== 0)
}

export function emptyStats(): ServerStats {
  return {
    udpQueries: 0,
    tcpQueries: 0,
    malformed: 0,
    errors: 0,
    tcpConnections: 0,
    tcpRefused: 0,
    tcpTimedOut: 0,
    udpDropped: 0,
  }
}
