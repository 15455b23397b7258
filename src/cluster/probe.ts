// /plexus/probe/1: membership's liveness probes and the RTT fallback, on one
// long-lived stream per peer instead of a libp2p ping stream each (issue 20,
// idle CPU). A libp2p ping opens a yamux stream, runs multistream-select,
// sends 32 bytes, reads them back and closes both halves: about three
// segments each way, a stream object with its listeners, and on the answering
// side an AbortSignal.timeout per ping (held until a full GC, deadline.ts).
// Membership probes two members a second, so that was most of what an idle
// agent sent. Here a probe is one 8-byte frame out and the same frame back.
//
// The answer proves what a libp2p ping proves: the peer's event loop read the
// connection and wrote to it. A peer of an earlier release does not speak the
// protocol; it is pinged the libp2p way until its connection closes.

import type { Stream, StreamMessageEvent } from '@libp2p/interface'

export const PROBE_PROTOCOL = '/plexus/probe/1'

/** one probe: a 32-bit sequence number and 32 random bits, echoed unchanged */
const FRAME_BYTES = 8
/** an echoing stream answers at most this many frames of one read; the rest is dropped (a peer flooding frames) */
const MAX_ECHO_FRAMES = 64

type Bytes = StreamMessageEvent['data']

/** Joins reads into whole frames: what arrived, behind the part of a frame left from the last read. */
class Frames {
  private rest = new Uint8Array(0)

  /** the whole frames now readable, in one array (a multiple of FRAME_BYTES long) */
  take(data: Bytes): Uint8Array {
    const chunk = data instanceof Uint8Array ? data : data.subarray()
    const all = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk])
    const whole = all.length - (all.length % FRAME_BYTES)
    // a copy: on a Buffer (what the muxer and Buffer.concat hand over) slice() is a view that would keep the read alive
    this.rest = Uint8Array.from(all.subarray(whole))
    return all.subarray(0, whole)
  }
}

/**
 * The answering side: every whole frame read is written back. Frames past
 * MAX_ECHO_FRAMES in one read are dropped, so a peer can make this host send
 * no more than it sent; a stream whose sends back up is reset by its
 * maxWriteBufferLength.
 */
export function echoProbes(stream: Stream): void {
  const frames = new Frames()
  stream.addEventListener('message', (e) => {
    const whole = frames.take(e.data)
    if (whole.length === 0 || stream.status !== 'open') return
    try {
      stream.send(whole.subarray(0, MAX_ECHO_FRAMES * FRAME_BYTES))
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  stream.addEventListener('remoteCloseWrite', () => {
    stream.close().catch(() => {})
  })
}

interface Waiter {
  sentAt: number
  resolve(rtt: number): void
  reject(err: unknown): void
}

/** one peer's outbound probe stream and the probes waiting on it */
class ProbeLink {
  private readonly waiting = new Map<number, Waiter>()
  private readonly frames = new Frames()
  private seq = 0
  private readonly salt = crypto.getRandomValues(new Uint32Array(1))[0] as number
  closed = false

  constructor(
    private readonly stream: Stream,
    private readonly onClosed: () => void,
  ) {
    stream.addEventListener('message', (e) => this.read(e.data))
    stream.addEventListener('close', (e) => this.close(e.error ?? new Error('probe stream closed')))
    // the peer stopped echoing: nothing sent here will be answered
    stream.addEventListener('remoteCloseWrite', () =>
      this.close(new Error('probe stream closed by the peer')),
    )
  }

  /** the round trip in ms of one frame, or the stream's end or the signal's abort as an error */
  ping(signal: AbortSignal): Promise<number> {
    if (this.closed) return Promise.reject(new Error('probe stream closed'))
    this.seq = (this.seq + 1) >>> 0
    const seq = this.seq
    const frame = new Uint8Array(FRAME_BYTES)
    const view = new DataView(frame.buffer)
    view.setUint32(0, seq)
    view.setUint32(4, this.salt)
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        this.waiting.delete(seq)
        reject(signal.reason)
      }
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiting.set(seq, {
        sentAt: performance.now(),
        resolve: (rtt) => {
          signal.removeEventListener('abort', onAbort)
          resolve(rtt)
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort)
          reject(err)
        },
      })
      try {
        this.stream.send(frame)
      } catch (err) {
        this.close(err)
      }
    })
  }

  /** answers the probes whose frames came back; frames of probes given up on, or not ours, are ignored */
  private read(data: Bytes): void {
    const whole = this.frames.take(data)
    const view = new DataView(whole.buffer, whole.byteOffset, whole.byteLength)
    const now = performance.now()
    for (let at = 0; at < whole.length; at += FRAME_BYTES) {
      if (view.getUint32(at + 4) !== this.salt) continue
      const seq = view.getUint32(at)
      const w = this.waiting.get(seq)
      if (!w) continue
      this.waiting.delete(seq)
      w.resolve(now - w.sentAt)
    }
  }

  close(err: unknown): void {
    if (this.closed) return
    this.closed = true
    this.onClosed()
    for (const w of this.waiting.values()) w.reject(err)
    this.waiting.clear()
    if (this.stream.status === 'open') this.stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

export interface ProbeDeps {
  /** opens a /plexus/probe/1 stream to the peer (dialing it if need be) */
  open(peer: string, signal: AbortSignal): Promise<Stream>
  /** a libp2p ping, for a peer that does not speak the protocol */
  legacyPing(peer: string, signal: AbortSignal): Promise<number>
}

/** The outbound side: a probe stream per peer, opened on its first probe and again after it closes. */
export class Probes {
  private readonly links = new Map<string, ProbeLink>()
  private readonly opening = new Map<string, Promise<ProbeLink | undefined>>()
  /** peers that refused the protocol (an earlier release), until their connection closes */
  private readonly legacy = new Set<string>()

  constructor(private readonly d: ProbeDeps) {}

  /** the round trip in ms to the peer, over its probe stream */
  async ping(peer: string, signal: AbortSignal): Promise<number> {
    if (this.legacy.has(peer)) return this.d.legacyPing(peer, signal)
    const link = this.links.get(peer) ?? (await this.link(peer, signal))
    return link ? link.ping(signal) : this.d.legacyPing(peer, signal)
  }

  /** the peer's connection closed: the next probe opens a new stream, and asks again whether it speaks the protocol */
  disconnected(peer: string): void {
    this.legacy.delete(peer)
    this.links.get(peer)?.close(new Error('peer disconnected'))
  }

  stop(): void {
    for (const link of [...this.links.values()]) link.close(new Error('stopping'))
  }

  /** The peer's link, opened once for all the probes that wait for it; undefined: the peer does not speak the protocol. */
  private link(peer: string, signal: AbortSignal): Promise<ProbeLink | undefined> {
    let p = this.opening.get(peer)
    if (!p) {
      p = this.d
        .open(peer, signal)
        .then((stream) => {
          const link = new ProbeLink(stream, () => {
            if (this.links.get(peer) === link) this.links.delete(peer)
          })
          this.links.set(peer, link)
          return link
        })
        .catch((err: unknown) => {
          if ((err as Error)?.name !== 'UnsupportedProtocolError') throw err
          this.legacy.add(peer)
          return undefined
        })
        .finally(() => this.opening.delete(peer))
      this.opening.set(peer, p)
    }
    return p
  }
}
