// The handshakes this host refused last (protector.ts refuses them, libp2p-transport.ts records
// them here): when and from where, so `plexctl doctor` can name the host that holds another
// cluster key (src/diag/doctor/checks.ts, check cluster-key). The counter
// plexus_cluster_connections_refused_total says only how many.
import { errorMessage, isPlexusError } from '../lib/errors.js'

/** key-mismatch: the other end spoke the handshake with another cluster key; handshake: anything else (a timeout, a close, not Plexus) */
export type RefusalKind = 'key-mismatch' | 'handshake'

export interface Refusal {
  /** ms since the epoch */
  at: number
  /** the other end's multiaddr; an inbound connection's port is the dialer's ephemeral one */
  remote: string
  /** inbound: the other end dialed this host; outbound: this host dialed it */
  direction: 'inbound' | 'outbound'
  kind: RefusalKind
  /** the error's message */
  reason: string
}

/** refusals kept per kind: a scanner's garbage does not push a key mismatch out */
export const REFUSALS_KEPT = 16

/** What the cluster component tells about its refused handshakes (undefined: standalone, no key, nothing dialed or accepted). */
export interface RefusalSource {
  refusals(): Refusal[] | undefined
}

export class RefusalLog {
  private readonly kept: Record<RefusalKind, Refusal[]> = { 'key-mismatch': [], handshake: [] }

  constructor(private readonly now: () => number = Date.now) {}

  add(remote: string, direction: Refusal['direction'], err: unknown): Refusal {
    const kind: RefusalKind = isPlexusError(err, 'PLX_CLUSTER_KEY_MISMATCH') ? 'key-mismatch' : 'handshake'
    const r: Refusal = { at: this.now(), remote, direction, kind, reason: errorMessage(err) }
    const list = this.kept[kind]
    list.push(r)
    if (list.length > REFUSALS_KEPT) list.shift()
    return r
  }

  /** both kinds, oldest first (copies) */
  list(): Refusal[] {
    return [...this.kept['key-mismatch'], ...this.kept.handshake]
      .sort((a, b) => a.at - b.at)
      .map((r) => ({ ...r }))
  }
}
