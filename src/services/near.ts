// `?near=`: members ordered by the estimated round trip from one host to
// theirs (Vivaldi coordinates in the node records), as Consul's ?near does.
import { distance, isCompatible } from '../cluster/vivaldi.js'
import type { NodeValue } from '../store/records.js'
import type { Member } from './catalog.js'

/**
 * Members (or anything placed on a host) sorted nearest first from `origin` (a peer id): the origin's own
 * members first (no network between), then by estimated RTT; hosts without a
 * coordinate, or when the origin has none, after those with one, in their
 * given order (the sort is stable). Pure.
 */
export function nearestFirst<M extends Pick<Member, 'peer'>>(
  members: M[],
  nodes: { peer: string; value: NodeValue }[],
  origin: string,
): M[] {
  const coords = new Map(nodes.map((n) => [n.peer, n.value.coordinate]))
  const from = coords.get(origin)
  const rtt = (peer: string): number => {
    if (peer === origin) return -1
    const to = coords.get(peer)
    return from && to && isCompatible(from, to) ? distance(from, to) : Number.POSITIVE_INFINITY
  }
  const cost = new Map(members.map((m) => [m.peer, rtt(m.peer)]))
  return [...members].sort((a, b) => {
    const x = cost.get(a.peer) as number
    const y = cost.get(b.peer) as number
    return x === y ? 0 : x - y // two unknowns (Infinity) are equal, not NaN
  })
}
