// One DNS message over TCP (RFC 1035 4.2.2: a two-byte length before each
// message): what a client does after a truncated UDP answer. Used by the
// forwarder for queries that came over TCP and by `plexctl dns query`.
import { connect } from 'node:net'

/** Sends msg to host:port over TCP and resolves the answer's bytes; undefined on error, close or timeout. */
export function tcpExchange(
  host: string,
  port: number,
  msg: Buffer,
  timeoutMs: number,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = connect({ host, port })
    const chunks: Buffer[] = []
    let got = 0
    const done = (b: Buffer | undefined): void => {
      clearTimeout(timer)
      sock.destroy()
      resolve(b)
    }
    const timer = setTimeout(() => done(undefined), timeoutMs)
    sock.on('connect', () => {
      const len = Buffer.allocUnsafe(2)
      len.writeUInt16BE(msg.length)
      sock.end(Buffer.concat([len, msg]))
    })
    sock.on('data', (c: Buffer) => {
      chunks.push(c)
      got += c.length
      if (got < 2) return
      const all = Buffer.concat(chunks)
      const need = all.readUInt16BE(0)
      if (all.length >= need + 2) done(all.subarray(2, need + 2))
    })
    sock.on('error', () => done(undefined))
    sock.on('close', () => done(undefined))
  })
}
