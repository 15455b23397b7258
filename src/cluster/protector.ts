import type {
  AbortOptions,
  ConnectionProtector,
  MessageStream,
  MultiaddrConnection,
  StreamMessageEvent,
} from '@libp2p/interface'
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import { xsalsa20 } from '@noble/ciphers/salsa.js'
import { PlexusError } from '../lib/errors.js'
import { withDeadline } from './deadline.js'

// Cluster membership is gated by a pre-shared key: the libp2p private-network
// wire format (pnet v1: each side sends a random 24-byte nonce in clear, then
// every byte is XSalsa20(psk, own nonce)), so agents of older releases still
// talk to this one. Our own implementation, not @libp2p/pnet: that package's
// XSalsa20 (the `xsalsa20` wasm module) grows one process-wide wasm memory
// every time a connection notices another one grew it, up to its 64 MB cap,
// then throws from inside a socket event listener, which ends the process; and
// it never frees its ciphers' pool slots. Here a cipher is a key, a nonce and a
// byte position on the JS heap (@noble/ciphers, audited, no wasm, no pool),
// dropped with the connection.
//
// pnet alone only fails later, inside multistream-select, with a
// garbled-protocol error that names nothing; so right after the nonce exchange
// both sides send a fixed magic through the encrypted stream and compare. A
// different key decrypts to garbage, and both sides refuse the connection in
// protect(), where we can log and count it.

const MAGIC = new TextEncoder().encode('plexus-cluster/1')
const NONCE_BYTES = 24
const KEY_BYTES = 32
const BLOCK = 64
const CHECK_TIMEOUT_MS = 5000
/** encrypted bytes held for one socket write at most; past this they go at once */
const COALESCE_BYTES = 64 * 1024

/**
 * XSalsa20 as a stream cipher over successive chunks: each update() continues
 * the keystream where the last one stopped. noble's xsalsa20 starts at a block
 * boundary, so a chunk that starts inside a block is laid out behind `offset`
 * bytes of padding and the padding's keystream is thrown away. It throws past
 * 2^32 blocks (256 GiB one way), which closes that connection.
 */
export class StreamXSalsa20 {
  private position = 0

  constructor(
    private readonly key: Uint8Array,
    private readonly nonce: Uint8Array,
  ) {
    if (key.length !== KEY_BYTES) throw new Error(`key must be ${KEY_BYTES} bytes`)
    if (nonce.length !== NONCE_BYTES) throw new Error(`nonce must be ${NONCE_BYTES} bytes`)
  }

  update(data: Uint8Array): Uint8Array {
    const offset = this.position % BLOCK
    const buf = new Uint8Array(offset + data.length)
    buf.set(data, offset)
    xsalsa20(this.key, this.nonce, buf, buf, (this.position - offset) / BLOCK)
    this.position += data.length
    return buf.subarray(offset)
  }
}

export interface ProtectorHooks {
  /**
   * a connection was refused in the handshake: err is a PLX_CLUSTER_KEY_MISMATCH for another
   * cluster key, anything else for a timeout, a close or garbage; direction says who dialed
   */
  refused(remoteAddr: string, err: Error, direction: 'inbound' | 'outbound'): void
  /** an established connection failed while carrying data; it has been closed */
  failed(remoteAddr: string, err: Error): void
  /** +1 when a connection's cipher pair is made, -1 when it is released (a gauge: 0 with no connections) */
  ciphers(delta: 1 | -1): void
}

/**
 * The encrypted connection over the raw one. Any error while carrying data
 * (a cipher error, an exception from the layers above while they take the
 * bytes) closes this connection and is reported; it never leaves a socket
 * event listener, where Node would treat it as uncaught.
 *
 * What the layers above send in one turn of the event loop goes out as one
 * socket write. They send frame by frame: a ping is a yamux window update,
 * multistream-select's lines, the payload and a close, each its own noise
 * message, and each a write(2) and a TCP segment of its own, which the
 * receiving agent reads and decrypts one by one. Joined, an idle agent of 10
 * sends 42 TCP segments a second instead of 86 and spends 6.4 % of a core
 * instead of 6.6-7.5 % (60 s each). XSalsa20 is a stream cipher, so the joined
 * ciphertext is the same bytes in the same order: nothing changes on the wire
 * but where the segments end.
 */
class BoxedConnection extends AbstractMultiaddrConnection {
  private inbound?: StreamXSalsa20
  private outbound?: StreamXSalsa20
  /** ciphertext waiting for the end of this turn of the event loop */
  private queued: Uint8Array[] = []
  private queuedBytes = 0
  /**
   * off during the key check: each side's magic must leave before it may see the other's and
   * refuse, or a refused peer would get a reset instead of the magic that names the mismatch
   */
  coalescing = false

  constructor(
    private readonly raw: MultiaddrConnection,
    ciphers: { inbound: StreamXSalsa20; outbound: StreamXSalsa20 },
    private readonly hooks: Pick<ProtectorHooks, 'ciphers'> & { failed(err: Error): void },
  ) {
    super({
      remoteAddr: raw.remoteAddr,
      direction: raw.direction,
      log: raw.log.newScope('psk'),
    })
    this.inbound = ciphers.inbound
    this.outbound = ciphers.outbound
    hooks.ciphers(1)
    raw.addEventListener('message', (evt) => this.receive(evt.data))
    raw.addEventListener('drain', () => this.onMuxerDrain())
    raw.addEventListener('close', (evt) => {
      this.release()
      if (evt.error == null) this.onTransportClosed()
      else if (evt.local) this.abort(evt.error)
      else this.onRemoteReset()
    })
    this.addEventListener('close', () => this.release())
  }

  private receive(data: StreamMessageEvent['data']): void {
    try {
      for (const chunk of data instanceof Uint8Array ? [data] : data) {
        if (!this.inbound) return
        this.onData(this.inbound.update(chunk))
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  sendData(data: Parameters<AbstractMultiaddrConnection['sendData']>[0]) {
    // the layers above may still write while the socket is being closed: nothing to deliver, not a failure
    if (this.raw.status !== 'open') return { sentBytes: data.byteLength, canSendMore: false }
    try {
      if (!this.outbound) throw new PlexusError('PLX_CLUSTER_CLOSED', 'connection already closed')
      this.queued.push(this.outbound.update(data.subarray()))
      this.queuedBytes += data.byteLength
      if (!this.coalescing || this.queuedBytes >= COALESCE_BYTES) this.flush()
      else if (this.queued.length === 1) setImmediate(this.flush)
      // the socket buffered an earlier write: the layers above wait for its drain
      return { sentBytes: data.byteLength, canSendMore: !this.raw.writableNeedsDrain }
    } catch (err) {
      this.fail(err as Error)
      return { sentBytes: data.byteLength, canSendMore: false }
    }
  }

  /** Sends what this turn queued, as one write. */
  private readonly flush = (): void => {
    if (this.queued.length === 0) return
    const chunks = this.queued
    this.queued = []
    this.queuedBytes = 0
    if (this.raw.status !== 'open') return
    try {
      this.raw.send(chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private fail(err: Error): void {
    this.release()
    this.hooks.failed(err)
    this.abort(err)
    this.raw.abort(err)
  }

  /** Cipher state and unsent ciphertext live only as long as the connection. */
  private release(): void {
    this.queued = []
    this.queuedBytes = 0
    if (!this.inbound) return
    this.inbound = undefined
    this.outbound = undefined
    this.hooks.ciphers(-1)
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    this.flush()
    await this.raw.close(options)
  }

  sendReset(err: Error): void {
    this.release()
    this.raw.abort(err)
  }

  sendPause(): void {
    this.raw.pause()
  }

  sendResume(): void {
    this.raw.resume()
  }
}

class ClusterProtector implements ConnectionProtector {
  constructor(
    private readonly psk: Uint8Array,
    private readonly hooks: ProtectorHooks,
  ) {}

  protect(connection: MessageStream, options?: { signal?: AbortSignal }): Promise<MessageStream> {
    if (options?.signal) return this.handshake(connection, options.signal)
    return withDeadline(CHECK_TIMEOUT_MS, (signal) => this.handshake(connection, signal))
  }

  private async handshake(connection: MessageStream, signal: AbortSignal): Promise<MessageStream> {
    const raw = connection as MultiaddrConnection
    const remote = String(raw.remoteAddr ?? 'unknown')
    try {
      const localNonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES))
      const clear = byteStream(raw)
      const [remoteNonce] = await Promise.all([
        clear.read({ bytes: NONCE_BYTES, signal }),
        clear.write(localNonce, { signal }),
      ])
      const boxed = new BoxedConnection(
        clear.unwrap() as MultiaddrConnection,
        {
          inbound: new StreamXSalsa20(this.psk, remoteNonce.subarray()),
          outbound: new StreamXSalsa20(this.psk, localNonce),
        },
        { ciphers: this.hooks.ciphers, failed: (err) => this.hooks.failed(remote, err) },
      )
      const bytes = byteStream(boxed)
      const [got] = await Promise.all([
        bytes.read({ bytes: MAGIC.length, signal }),
        bytes.write(MAGIC, { signal }),
      ])
      const seen = got.subarray()
      if (!seen.every((b, i) => b === MAGIC[i])) {
        boxed.abort(new Error('cluster key mismatch'))
        throw new PlexusError('PLX_CLUSTER_KEY_MISMATCH', `peer at ${remote} uses a different cluster key`)
      }
      boxed.coalescing = true
      return bytes.unwrap()
    } catch (err) {
      this.hooks.refused(remote, err as Error, raw.direction)
      connection.abort(err as Error)
      throw err
    }
  }
}

/** The 32-byte key inside the pnet v1 text form (key.ts has checked the form). */
export function pskBytes(text: Uint8Array): Uint8Array {
  const hex = new TextDecoder().decode(text).trim().split('\n')[2] ?? ''
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new PlexusError('PLX_CLUSTER_BAD_KEY', 'not a pnet v1 key')
  return Uint8Array.from(hex.match(/../g) as string[], (h) => Number.parseInt(h, 16))
}

/** The libp2p connectionProtector for a cluster key in its pnet v1 text form. */
export function clusterProtector(psk: Uint8Array, hooks: ProtectorHooks): () => ConnectionProtector {
  const key = pskBytes(psk)
  return () => new ClusterProtector(key, hooks)
}
