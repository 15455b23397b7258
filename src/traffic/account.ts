// Pure: conntrack entries and endpoint records → bytes between services, as a decaying rate per
// pair of services. Each sample adds what every connection moved since the last one (its counters
// minus what they were then), so a connection is counted once however many samples see it, and a
// closed one is still counted while the kernel keeps its entry (TIME_WAIT: two minutes), longer
// than the sampling interval.
import type { CtEntry } from '../lib/conntrack.js'

/** where an address is: its service, and whether its endpoint is on this host */
export interface AddressOwner {
  service: string
  local: boolean
}

export interface PairRate {
  from: string
  to: string
  bytesPerSec: number
}

/** pairs kept in a summary (the record's bound), busiest first */
export const MAX_PAIRS = 256
/** connections remembered between samples; beyond it the oldest are forgotten (counted again if seen) */
export const MAX_TRACKED = 200_000
/** a pair whose rate fell under this many bytes a second is dropped */
const FLOOR_BYTES_PER_SEC = 0.01

/**
 * Which pair of services a connection is between, or undefined when it is not counted here. It is
 * counted on the host of the side that opened it (orig's source), so a connection between hosts,
 * which both hosts' tables hold, is counted once; the answering side is the reply's source (after
 * DNAT: the container behind a published port or a service address). Traffic from or to anything
 * that is not a service's endpoint (a host, the outside) is not a service pair.
 */
export function pairOf(e: CtEntry, owners: ReadonlyMap<string, AddressOwner>): [string, string] | undefined {
  const client = owners.get(e.orig.src)
  if (!client?.local) return undefined
  const server = owners.get(e.reply.src)
  if (!server || server.service === client.service) return undefined
  return [client.service, server.service]
}

export class TrafficAccount {
  /** conntrack id + orig tuple → bytes counted so far */
  private seen = new Map<string, number>()
  private readonly rates = new Map<string, PairRate>()
  private last: number | undefined

  /** tauMs: the time constant of the average: a pair that stops fades to 1/e in tauMs */
  constructor(readonly tauMs: number) {}

  /** Adds one sample of the table; returns the bytes added per pair ("from to" → bytes). */
  sample(
    entries: readonly CtEntry[],
    owners: ReadonlyMap<string, AddressOwner>,
    now: number,
  ): Map<string, number> {
    const added = new Map<string, number>()
    const seen = new Map<string, number>()
    for (const e of entries) {
      const pair = pairOf(e, owners)
      if (!pair) continue
      const id = `${e.id} ${e.orig.src}:${e.orig.sport}>${e.orig.dst}:${e.orig.dport}/${e.orig.protocol}`
      const bytes = e.origBytes + e.replyBytes
      const delta = Math.max(0, bytes - (this.seen.get(id) ?? 0))
      if (seen.size < MAX_TRACKED) seen.set(id, bytes)
      if (delta === 0) continue
      const k = `${pair[0]} ${pair[1]}`
      added.set(k, (added.get(k) ?? 0) + delta)
    }
    this.seen = seen
    const dt = this.last === undefined ? 0 : Math.max(0, now - this.last)
    const f = this.decay(now)
    for (const [k, bytes] of added) {
      const [from, to] = k.split(' ') as [string, string]
      const r = this.rates.get(k) ?? { from, to, bytesPerSec: 0 }
      // an exponentially weighted average of this interval's rate, so steady traffic of R bytes a second
      // reads R; the first sample has no interval: what connections already moved counts over one tau
      r.bytesPerSec += dt > 0 ? (bytes * (1 - f)) / (dt / 1000) : bytes / (this.tauMs / 1000)
      this.rates.set(k, r)
    }
    return added
  }

  /** the pairs' rates now, busiest first, at most MAX_PAIRS */
  summary(): PairRate[] {
    return [...this.rates.values()]
      .filter((r) => r.bytesPerSec >= FLOOR_BYTES_PER_SEC)
      .sort((a, b) => b.bytesPerSec - a.bytesPerSec || (a.from + a.to < b.from + b.to ? -1 : 1))
      .slice(0, MAX_PAIRS)
      .map((r) => ({ ...r, bytesPerSec: Math.round(r.bytesPerSec * 1000) / 1000 }))
  }

  /** ages every rate to `now`; the factor it applied */
  private decay(now: number): number {
    const dt = this.last === undefined ? 0 : Math.max(0, now - this.last)
    this.last = now
    const f = Math.exp(-dt / this.tauMs)
    for (const [k, r] of this.rates) {
      r.bytesPerSec *= f
      if (r.bytesPerSec < FLOOR_BYTES_PER_SEC) this.rates.delete(k)
    }
    return f
  }
}
