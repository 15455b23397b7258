import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Next, Reply, Stage } from '../chain.js'
import { errorReply, type Query, RCODE_REFUSED, RCODE_SERVFAIL } from '../wire.js'
import { tcpExchange } from './tcp.js'

export interface Upstream {
  host: string
  port: number
}

export interface ForwardOptions {
  /** tried in order; at most 3 are used */
  upstreams: Upstream[]
  /** per upstream attempt */
  timeoutMs: number
  /** queries waiting on upstreams at once; beyond this the answer is SERVFAIL at once */
  maxInFlight: number
  /** told the outcome of each attempt at an upstream (metrics) */
  onAttempt?: (u: Upstream, result: 'answer' | 'failed' | 'no_reply') => void
}

export const MAX_UPSTREAMS = 3
/** upstream sockets per address family (random source ports) */
const SOCKET_POOL = 8

interface Pending {
  upstream: Upstream
  /** the query as sent upstream (our id), to check the answer's question */
  sent: Buffer
  questionEnd: number
  resolve(b: Buffer | undefined): void
  timer: NodeJS.Timeout
}

/**
 * Forwards everything the zone does not answer to the host's resolvers: each
 * upstream in turn with its own timeout, SERVFAIL when all fail (a client must
 * never be left waiting in silence). UDP queries go out from a random socket
 * of a small pool with a fresh random id; TCP queries go out over TCP.
 */
export class ForwardStage implements Stage {
  readonly name = 'forward'
  private readonly upstreams: Upstream[]
  private readonly pending = new Map<number, Pending>()
  private readonly sockets: { v4: UdpSocket[]; v6: UdpSocket[] } = { v4: [], v6: [] }
  private inFlight = 0
  failures = 0
  overloaded = 0

  constructor(private readonly opts: ForwardOptions) {
    this.upstreams = opts.upstreams.slice(0, MAX_UPSTREAMS)
  }

  get queriesInFlight(): number {
    return this.inFlight
  }

  handle(q: Query, _next: Next): Reply {
    if (this.upstreams.length === 0) return errorReply(q, RCODE_REFUSED)
    if (this.inFlight >= this.opts.maxInFlight) {
      this.overloaded++
      return errorReply(q, RCODE_SERVFAIL)
    }
    this.inFlight++
    return this.resolve(q).finally(() => {
      this.inFlight--
    })
  }

  private async resolve(q: Query): Promise<Buffer> {
    const clientId = q.id
    for (const u of this.upstreams) {
      const answer = q.tcp ? await this.viaTcp(q, u) : await this.viaUdp(q, u)
      if (!answer) {
        this.opts.onAttempt?.(u, 'no_reply')
        continue
      }
      const rcode = answer.length < 12 ? RCODE_SERVFAIL : answer.readUInt16BE(2) & 0xf
      // a broken upstream is no answer: try the next one
      if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED) {
        this.opts.onAttempt?.(u, 'failed')
        continue
      }
      this.opts.onAttempt?.(u, 'answer')
      answer.writeUInt16BE(clientId, 0)
      return answer
    }
    this.failures++
    return errorReply(q, RCODE_SERVFAIL)
  }

  /**
   * A socket from a small per-family pool, picked at random per query: an
   * off-path spoofer must guess the source port as well as the 16-bit id.
   */
  private socket(v6: boolean): UdpSocket {
    const pool = v6 ? this.sockets.v6 : this.sockets.v4
    const i = (Math.random() * SOCKET_POOL) | 0
    const have = pool[i]
    if (have) return have
    const s = createSocket(v6 ? 'udp6' : 'udp4')
    s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port))
    s.on('error', () => {
      // a send error surfaces as a timeout of that attempt; the socket stays usable
    })
    s.unref()
    pool[i] = s
    return s
  }

  private freeId(): number {
    for (;;) {
      const id = (Math.random() * 0x10000) | 0
      if (!this.pending.has(id)) return id
    }
  }

  private viaUdp(q: Query, u: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const id = this.freeId()
      const sent = Buffer.from(q.buf)
      sent.writeUInt16BE(id, 0)
      const timer = setTimeout(() => {
        this.pending.delete(id)
        resolve(undefined)
      }, this.opts.timeoutMs)
      this.pending.set(id, { upstream: u, sent, questionEnd: q.questionEnd, resolve, timer })
      this.socket(isIPv6(u.host)).send(sent, u.port, u.host, (err) => {
        if (err && this.pending.get(id)?.sent === sent) {
          clearTimeout(timer)
          this.pending.delete(id)
          resolve(undefined)
        }
      })
    })
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    if (msg.length < 12) return
    const p = this.pending.get(msg.readUInt16BE(0))
    // only the upstream we asked, answering the question we asked (spoofed or stray packets are dropped)
    if (!p || p.upstream.host !== address || p.upstream.port !== port) return
    if (msg.length < p.questionEnd || msg.compare(p.sent, 12, p.questionEnd, 12, p.questionEnd) !== 0) return
    this.pending.delete(msg.readUInt16BE(0))
    clearTimeout(p.timer)
    p.resolve(msg)
  }

  private viaTcp(q: Query, u: Upstream): Promise<Buffer | undefined> {
    return tcpExchange(u.host, u.port, q.buf, this.opts.timeoutMs)
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.resolve(undefined)
    }
    this.pending.clear()
    // the pools are sparse (filled on first use): forEach skips the holes
    for (const pool of [this.sockets.v4, this.sockets.v6])
      pool.forEach((s) => {
        s.close()
      })
    this.sockets.v4 = []
    this.sockets.v6 = []
  }
}
