// explain(subject): which store records produced a kernel object or a zone
// entry. A reconciler lists what its last pass produced as origins (an
// object as text, the store keys behind it); this file finds the ones a
// subject names. Pure: the owner hands in the origins and the store's index.

/** One object a reconciler produced and the store records it was computed from. */
export interface Origin {
  /** route, neigh, fdb, link, address, rule, switch, veth, peer; A, AAAA, PTR, SRV, name */
  kind: string
  /** the object as text, its identifying fields separated by spaces: `10.244.2.0/24 via 10.244.2.0 dev plexus.1` */
  object: string
  keys: readonly string[]
}

export interface Explanation {
  kind: string
  object: string
  /** each record's key and modify index in the store now (0: the record is gone since the pass) */
  records: { key: string; index: number }[]
}

export interface Explainable {
  explain(subject: string): Explanation[]
}

/**
 * A subject as origins are matched: lower case, no trailing dot (a DNS name
 * as `dig` prints it), no `#hash` after a firewall tag (`plexus:ports/x#1a2b`
 * as iptables-save and nft print it).
 */
export function normalizeSubject(subject: string): string {
  const s = subject.trim().toLowerCase().replace(/\.$/, '')
  return s.startsWith('plexus:') ? s.replace(/#[0-9a-f]*$/, '') : s
}

/**
 * The origins a subject names: the whole object text, or one of its fields
 * (a route's destination or gateway, a rule's tag, a veth's name, a DNS
 * name), compared after normalizeSubject. An empty subject names nothing.
 */
export function explainSubject(
  origins: Iterable<Origin>,
  subject: string,
  indexOf: (key: string) => number,
): Explanation[] {
  const s = normalizeSubject(subject)
  if (!s) return []
  const out: Explanation[] = []
  for (const o of origins) {
    const text = o.object.toLowerCase()
    if (text !== s && !text.split(' ').includes(s)) continue
    out.push({
      kind: o.kind,
      object: o.object,
      records: [...new Set(o.keys)].sort().map((key) => ({ key, index: indexOf(key) })),
    })
  }
  return out
}
