// A slow-drip client for the fair-limit tests (DNS over TCP, the API): it
// writes one byte of a message a second and never the last one, so only a
// deadline that dripped bytes do not move can close it.
import type { Socket } from 'node:net'

export interface Drip {
  sock: Socket
  openedAt: number
  /** when the server closed it (undefined: still open) */
  closedAt?: number
  /** bytes written before it was closed */
  sent: number
}

/** Opens one connection with `open` and drips `bytes` into it; resolves once connected or closed. */
export function drip(open: () => Socket, bytes: Buffer): Promise<Drip> {
  return new Promise((resolve) => {
    const sock = open()
    const d: Drip = { sock, openedAt: Date.now(), sent: 0 }
    const timer = setInterval(() => {
      if (d.sent < bytes.length - 1 && !sock.destroyed) sock.write(bytes.subarray(d.sent, ++d.sent))
    }, 1000)
    sock.on('connect', () => {
      d.openedAt = Date.now()
      sock.write(bytes.subarray(0, ++d.sent))
      resolve(d)
    })
    sock.on('error', () => {})
    sock.on('close', () => {
      d.closedAt ??= Date.now()
      clearInterval(timer)
      resolve(d)
    })
  })
}
