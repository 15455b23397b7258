import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIPv6, type Server, type Socket } from 'node:net'
import { isPending, type Next, type Reply } from './chain.js'
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
  /** a TCP connection idle this long is closed (RFC 7766 suggests seconds) */
  tcpIdleMs: number
}

export interface ServerStats {
  udpQueries: number
  tcpQueries: number
  malformed: number
  errors: number
  tcpConnections: number
}

const MAX_TCP_BUFFER = 65535 + 2
const UDP_BUFFER = 4 * 1024 * 1024

/**
 * UDP and TCP listeners on one address, handing parsed queries to the chain.
 * Nothing a client sends can throw out of here: bad packets are answered
 * (FORMERR/NOTIMP when an id is readable) or dropped, and a handler failure is SERVFAIL.
 */
export class DnsListener {
  private udp?: UdpSocket
  private tcp?: Server
  private readonly conns = new Set<Socket>()

  constructor(
    readonly address: string,
    private readonly opts: ServerOptions,
    private readonly chain: Next,
    private readonly stats: ServerStats,
  ) {}

  /** Binds UDP and TCP; rejects (leaving nothing bound) if either fails. */
  async listen(udpHandle?: UdpSocket): Promise<void> {
    // bursts (every container resolving at start-up) must queue in the kernel, not be dropped;
    // the kernel caps this at net.core.rmem_max/wmem_max
    const udp =
      udpHandle ??
      createSocket({
        type: isIPv6(this.address) ? 'udp6' : 'udp4',
        recvBufferSize: UDP_BUFFER,
        sendBufferSize: UDP_BUFFER,
      })
    udp.on('message', (msg, rinfo) => this.onUdp(udp, msg, rinfo.port, rinfo.address))
    if (!udpHandle) {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject)
        udp.bind(this.opts.port, this.address, () => {
          udp.off('error', reject)
          resolve()
        })
      })
    }
    const tcp = createServer((s) => this.onTcp(s))
    tcp.maxConnections = this.opts.maxTcpConnections
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen({ port: this.udpPort(udp), host: this.address }, () => {
          tcp.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      udp.close()
      throw err
    }
    // counted only once bound: a failed bind is retried by the caller, not an error of a running server
    udp.on('error', () => this.stats.errors++)
    tcp.on('error', () => this.stats.errors++)
    this.udp = udp
    this.tcp = tcp
  }

  /** the bound port (differs from opts.port when that is 0, in tests) */
  get port(): number {
    return this.udp ? this.udpPort(this.udp) : this.opts.port
  }

  /** the UDP socket, to share with worker processes */
  get udpSocket(): UdpSocket | undefined {
    return this.udp
  }

  private udpPort(udp: UdpSocket): number {
    return udp.address().port
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy()
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ])
    this.udp = undefined
    this.tcp = undefined
  }

  private onUdp(udp: UdpSocket, msg: Buffer, port: number, address: string): void {
    this.stats.udpQueries++
    answer(msg, false, this.chain, this.stats, (out) => {
      udp.send(out, port, address)
    })
  }

  private onTcp(s: Socket): void {
    this.stats.tcpConnections++
    this.conns.add(s)
    s.setNoDelay(true)
    s.setTimeout(this.opts.tcpIdleMs, () => s.destroy())
    s.on('close', () => this.conns.delete(s))
    s.on('error', () => s.destroy())
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
        this.stats.tcpQueries++
        answer(msg, true, this.chain, this.stats, (out) => {
          if (s.destroyed) return
          const head = Buffer.allocUnsafe(2)
          head.writeUInt16BE(out.length)
          s.cork()
          s.write(head)
          s.write(out)
          s.uncork()
        })
      }
      if (buf.length > MAX_TCP_BUFFER) s.destroy()
    })
  }
}

/** Parse, run the chain, enforce the size limit, send. Shared by UDP, TCP and workers. */
export function answer(
  msg: Buffer,
  tcp: boolean,
  chain: Next,
  stats: ServerStats,
  send: (b: Buffer) => void,
): void {
  const parsed = parseQuery(msg, tcp)
  if (!parsed.ok) {
    stats.malformed++
    if (parsed.rcode >= 0) send(headerOnlyReply(parsed.id, parsed.flags, parsed.rcode))
    return
  }
  const q = parsed.query
  let r: Reply
  try {
    r = q.ednsVersion > 0 ? errorReply(q, RCODE_BADVERS) : chain(q)
  } catch {
    stats.errors++
    r = errorReply(q, RCODE_SERVFAIL)
  }
  if (!isPending(r)) {
    send(fit(q, r))
    return
  }
  r.then(
    (b) => send(fit(q, b)),
    () => {
      stats.errors++
      send(errorReply(q, RCODE_SERVFAIL))
    },
  )
}

function fit(q: Query, b: Buffer): Buffer {
  return b.length <= replyLimit(q)
    ? b
    : truncated(q, b.readUInt16BE(2) & 0xf, (b.readUInt16BE(2) & 0x0400) !== 0)
}

export function emptyStats(): ServerStats {
  return { udpQueries: 0, tcpQueries: 0, malformed: 0, errors: 0, tcpConnections: 0 }
}
