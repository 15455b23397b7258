// Typed access to native/udp.c (plexus_udp.node): a UDP socket that receives
// datagrams in batches into shared slots and sends the replies JS leaves there
// with one sendmmsg. Why it exists: native/README.md.
import { loadAddon } from '../lib/native.js'

/** The native socket object (see native/udp.c for the contract of each member). */
export interface BatchSocket {
  /** the bound port (a real one when 0 was asked) */
  readonly port: number
  /** SLOTS slots of SLOT_SIZE bytes: datagram i of a batch starts at i * SLOT_SIZE */
  readonly input: Buffer
  /** same shape: the reply to datagram i goes at i * SLOT_SIZE, its length in meta */
  readonly output: Buffer
  /** META_STRIDE int32 per slot: received length, truncated flag, reply length (set by JS), sender's IPv4 */
  readonly meta: Int32Array
  /** a copy of slot i's sender address, for a reply sent after the batch with sendTo */
  peer(slot: number): Buffer
  /** one datagram outside a batch; false when the socket is closed */
  sendTo(data: Buffer, peer: Buffer): boolean
  stats(): BatchSocketStats
  close(done: () => void): void
}

export interface BatchSocketStats {
  received: number
  sent: number
  /** replies dropped because the socket and the queue behind it were full */
  dropped: number
  errors: number
  batches: number
  /** replies waiting for the socket to become writable */
  queued: number
}

interface UdpAddon {
  UdpSocket: new (address: string, port: number, onBatch: (n: number) => void) => BatchSocket
  SLOTS: number
  SLOT_SIZE: number
  META_STRIDE: number
  META_LEN: number
  META_TRUNC: number
  META_OUT: number
  /** the sender's IPv4 address (read it `>>> 0`), 0 for an IPv6 sender */
  META_PEER4: number
  /** replies held while the socket cannot take more; beyond this they are dropped */
  QUEUE_MAX: number
}

/** The addon (dist/native/plexus_udp.node). */
export function udpAddon(): UdpAddon {
  return loadAddon<UdpAddon>('plexus_udp', 'PLX_DNS_UDP_ADDON')
}

/**
 * Creates, binds and starts polling a batching UDP socket in the calling
 * thread's network namespace. onBatch(n) is called with n datagrams in the
 * slots; what it leaves in the output slots is sent when it returns. Throws
 * the bind error (code EADDRINUSE, EADDRNOTAVAIL, …; errno, syscall) leaving nothing open.
 */
export function openBatchSocket(address: string, port: number, onBatch: (n: number) => void): BatchSocket {
  const { UdpSocket } = udpAddon()
  return new UdpSocket(address, port, onBatch)
}

/** Closes the socket; resolves once the fd is closed. */
export function closeBatchSocket(s: BatchSocket): Promise<void> {
  return new Promise((resolve) => s.close(resolve))
}
