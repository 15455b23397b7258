// The failure detector, pure (SWIM's suspect / refute, with the node record's
// version as the incarnation). No host broadcasts "I am alive" any more: each
// probes a few members a period, and a member that does not answer is
// suspected in the prober's own node record. Every host reads those
// suspicions from the store and decides alone, by the same rule, so all agree
// once the records have spread. The suspected host refutes by rewriting its
// node record: a suspicion names the version it doubts, and a newer one voids it.
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
 * alive, suspect after suspectAfterMs of silence, dead after deadAfterMs.
 * Silence runs from a suspicion's `since`, or (for an agent of an earlier
 * release, which writes a heartbeat a period instead of probing) from its last heartbeat.
 */
export function memberState(
  silentMs: number,
  cfg: { suspectAfterMs: number; deadAfterMs: number },
): MemberState {
  if (silentMs >= cfg.deadAfterMs) return 'dead'
  if (silentMs >= cfg.suspectAfterMs) return 'suspect'
  return 'alive'
}

/** The node record's value, its owner and whether it is a member's own (key = nodes/<owner>). */
export const ownNodeRecord = (r: StoreRecord): boolean =>
  !r.tombstone && r.key.startsWith(NODE_PREFIX) && r.key.slice(NODE_PREFIX.length) === r.owner

/** A member's node record speaks the probing protocol when it carries a suspects map (maybe empty). */
export const probes = (v: NodeValue | undefined): boolean => v?.suspects !== undefined

/**
 * For each member: the oldest `since` of a suspicion that still holds, i.e.
 * published in a live node record and naming the member's current record
 * version or a later one (what the suspecting host held may be newer than
 * ours). `values` are the decoded node records, by owner.
 */
export function suspicions(
  records: StoreRecord[],
  values: ReadonlyMap<string, NodeValue>,
  now: number,
): Map<string, number> {
  const wallOf = new Map<string, number>()
  for (const r of records) if (ownNodeRecord(r)) wallOf.set(r.owner, r.version.wall)
  const out = new Map<string, number>()
  for (const r of records) {
    if (!ownNodeRecord(r) || isExpired(r, now)) continue
    const doubts = values.get(r.owner)?.suspects
    if (!doubts) continue
    for (const [peer, s] of Object.entries(doubts)) {
      const wall = wallOf.get(peer)
      if (peer === r.owner || wall === undefined || s.v < wall) continue
      out.set(peer, Math.min(out.get(peer) ?? Number.POSITIVE_INFINITY, s.since))
    }
  }
  return out
}
