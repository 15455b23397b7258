// What replication needs from the network, so the same replication code runs
// over libp2p (libp2p-transport.ts) and over the simulator (sim/network.ts).

/** Gossip validation result: accept (merge happened, forward it), ignore (nothing new), reject (penalize sender). */
export type GossipVerdict = 'accept' | 'ignore' | 'reject'

export interface TransportHandlers {
  /** a delta from the gossip topic; runs before the transport forwards it */
  gossip(from: string, data: Uint8Array): GossipVerdict
  /** a /plexus/sync/1 request; returns the response */
  request(from: string, data: Uint8Array): Uint8Array
  /** a connection to this peer was established (first or again) */
  connected(peer: string): void
}

export interface Transport {
  readonly self: string
  setHandlers(h: TransportHandlers): void
  /** publish a delta on the gossip topic (delivered to peers, never back to us) */
  publish(data: Uint8Array): void
  request(peer: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>
  /** gossip bytes queued for peers and not yet written to their connections (absent: never backs up) */
  backlogBytes?(): number
  /** currently connected peers */
  peers(): string[]
  /**
   * A request to this peer failed: drop the connection so the dialer makes a
   * fresh one. A connection stalled by a partition would otherwise wait out
   * TCP's retransmission backoff long after the network heals.
   */
  reset?(peer: string): void
}

/** Time and timers, injected so the simulator can run many hosts on one virtual clock. */
export interface Scheduler {
  now(): number
  /** calls fn every ms (first after ms); returns cancel */
  every(ms: number, fn: () => void): () => void
  after(ms: number, fn: () => void): () => void
}

export const realScheduler: Scheduler = {
  now: Date.now,
  every(ms, fn) {
    const t = setInterval(fn, ms)
    t.unref()
    return () => clearInterval(t)
  },
  after(ms, fn) {
    const t = setTimeout(fn, ms)
    t.unref()
    return () => clearTimeout(t)
  },
}
