// The failure detector, pure (SWIM's suspect / refute, with the node record's
// version as the incarnation, and Lifeguard's two refinements: local health,
// suspicions that weaken with one accuser). No host broadcasts "I am alive" any more: each
// probes a few members a period, and a member that does not answer is
// suspected in the prober's own node record. Every host reads those
// suspicions from the store and decides alone, by the same rule, so all agree
// once the records have spread. The suspected host refutes by rewriting its
// node record: a suspicion names the version it doubts, and a newer one voids it.
// Lifeguard (Dadgar et al., 2018; memberlist's "awareness") is what keeps a
// loaded cluster from judging its slow members dead: a host whose probes time
// out or who has to refute waits longer before it accuses (nextHealth), and a
// suspicion only one host holds takes longer to judge (suspicionScale).
import { isExpired } from '../store/record.js'
import type { NodeValue } from '../store/records.js'
import { NODE_PREFIX, type StoreRecord } from '../store/types.js'

export type MemberState = 'alive' | 'suspect' | 'dead'

/** What a prober publishes about a member that stopped answering (NodeValue.suspects[peerId]). */
export interface Suspicion {
  /** the HLC wall of the member's node record the prober doubts: a newer record refutes it */
  v: number
  /** when the member was last known to answer: the first unanswered probe, or the doubted record's wall if later */
  since: number
}

/**
 * alive, suspect after suspectAfterMs of silence, dead after deadAfterMs, both
 * stretched by `scale` (suspicionScale). Silence runs from a suspicion's
 * `since`, or (for an agent of an earlier release, which writes a heartbeat a
 * period instead of probing) from its last heartbeat.
 */
export function memberState(
  silentMs: number,
  cfg: { suspectAfterMs: number; deadAfterMs: number },
  scale = 1,
): MemberState {
  if (silentMs >= cfg.deadAfterMs * scale) return 'dead'
  if (silentMs >= cfg.suspectAfterMs * scale) return 'suspect'
  return 'alive'
}

/** Lifeguard's longest suspicion: a member with one accuser is judged this many times slower. */
export const SUSPICION_MAX_SCALE = 3
/** Lifeguard's K: independent accusers beyond the first that bring the suspicion down to its shortest (memberlist: SuspicionMult − 2) */
const CONFIRMATIONS = 2

/**
 * Lifeguard's dynamic suspicion (memberlist's suspicion timeout): one accuser
 * may be the slow one, so its word alone takes SUSPICION_MAX_SCALE times the
 * configured times; each further host that accuses the same version brings it
 * down, logarithmically, to the configured times once CONFIRMATIONS more
 * agree (or every other member does, in a smaller cluster). A crashed agent
 * is accused by every member within a period or two (its connections close,
 * and each probes it at once), so it is judged at the configured times.
 */
export function suspicionScale(accusers: number, members: number): number {
  const k = Math.min(CONFIRMATIONS, members - 2)
  if (k < 1 || accusers > k) return 1
  const drop = Math.log(Math.max(1, accusers)) / Math.log(k + 1)
  return Math.max(1, SUSPICION_MAX_SCALE - (SUSPICION_MAX_SCALE - 1) * drop)
}

/** Lifeguard's local health: the probe timeout is stretched up to this many times */
export const HEALTH_MAX = 8

/**
 * Lifeguard's local health score, in [0, HEALTH_MAX − 1]: a probe of ours that
 * timed out, or a suspicion of us we had to refute, says as much about this
 * host being slow as about the other (one more); an answered probe, one less.
 * The probe timeout is the period times (1 + score), so a loaded host gives
 * others longer to answer before it accuses them.
 */
export function nextHealth(score: number, event: 'answered' | 'timed-out' | 'refuted'): number {
  const next = event === 'answered' ? score - 1 : score + 1
  return Math.min(HEALTH_MAX - 1, Math.max(0, next))
}

/** The node record's value, its owner and whether it is a member's own (key = nodes/<owner>). */
export const ownNodeRecord = (r: StoreRecord): boolean =>
  !r.tombstone && r.key.startsWith(NODE_PREFIX) && r.key.slice(NODE_PREFIX.length) === r.owner

/** A member's node record speaks the probing protocol when it carries a suspects map (maybe empty). */
export const probes = (v: NodeValue | undefined): boolean => v?.suspects !== undefined

/** What the live suspicions of one member say: the oldest `since`, and how many hosts accuse it. */
export interface Doubted {
  since: number
  accusers: number
}

/**
 * For each member: the oldest `since` of the suspicions that still hold, i.e.
 * published in a live node record and naming the member's current record
 * version or a later one (what the suspecting host held may be newer than
 * ours), and the number of hosts publishing one. `values` are the decoded
 * node records, by owner.
 */
export function suspicions(
  records: StoreRecord[],
  values: ReadonlyMap<string, NodeValue>,
  now: number,
): Map<string, Doubted> {
  const wallOf = new Map<string, number>()
  for (const r of records) if (ownNodeRecord(r)) wallOf.set(r.owner, r.version.wall)
  const out = new Map<string, Doubted>()
  for (const r of records) {
    if (!ownNodeRecord(r) || isExpired(r, now)) continue
    const doubts = values.get(r.owner)?.suspects
    if (!doubts) continue
    for (const [peer, s] of Object.entries(doubts)) {
      const wall = wallOf.get(peer)
      if (peer === r.owner || wall === undefined || s.v < wall) continue
      const d = out.get(peer)
      out.set(
        peer,
        d ? { since: Math.min(d.since, s.since), accusers: d.accusers + 1 } : { since: s.since, accusers: 1 },
      )
    }
  }
  return out
}
