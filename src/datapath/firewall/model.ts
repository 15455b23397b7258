// The desired firewall, as data both backends render: ordered sections of
// rules, each rule attached to one hook. The datapath contributes the
// `cluster` section (forwarding + masquerade); published ports (issue 7) add
// their own section (DNAT in prerouting/output, SNAT/masquerade for hairpin)
// with the same vocabulary, without touching the renderers' structure.
//
// Every rendered rule carries a comment `plexus:<section>/<id>#<hash>`; the
// hash covers the rule's content, so reading back the comments per chain is
// enough to detect a rule that was deleted, added, reordered or changed.
import { createHash } from 'node:crypto'
import { isIPv6 } from 'node:net'
import { diffArrays } from 'diff'
import { parseCidr, parseIPv4 } from '../../ipam/cidr.js'
import type { NetworkConfig } from '../../ipam/config.js'

/**
 * Where a rule runs. forward/input are filtering hooks, the others NAT hooks;
 * `bridge` filters layer-2 frames as they enter the bridge from a port
 * (a container's veth), before the bridge learns their MAC or routes them.
 */
export type Hook = 'forward' | 'input' | 'prerouting' | 'output' | 'postrouting' | 'bridge'
export const HOOKS: readonly Hook[] = ['forward', 'input', 'prerouting', 'output', 'postrouting', 'bridge']
export const NAT_HOOKS: ReadonlySet<Hook> = new Set(['prerouting', 'output', 'postrouting'])

export interface Match {
  /** CIDR or address; `not` variants negate */
  src?: string
  notSrc?: string
  dst?: string
  notDst?: string
  iif?: string
  oif?: string
  proto?: 'tcp' | 'udp'
  dport?: number
  /** destination is an address of this host (iptables addrtype LOCAL, nft fib daddr type local) */
  dstLocal?: boolean
  /** connection tracking state is one of these (iptables -m conntrack --ctstate, nft ct state) */
  ctState?: ('new' | 'established' | 'related' | 'invalid')[]
  /** the connection's destination was NATed (iptables --ctstate DNAT, nft ct status dnat) */
  ctDnat?: boolean
  // Layer 2, hook `bridge` only (iif is then the bridge port). src/notSrc there need etherType ipv4.
  /** the frame's ethertype */
  etherType?: 'ipv4' | 'ipv6' | 'arp'
  /** the frame's source MAC is not this one */
  notSrcMac?: string
  /** IPv6 source address or CIDR (etherType ipv6) */
  src6?: string
  /** ARP sender protocol address is not this IPv4 address (etherType arp) */
  notArpSrc?: string
  /** ARP sender hardware address is not this MAC (etherType arp) */
  notArpSrcMac?: string
  /**
   * an ICMPv6 neighbour advertisement whose target is none of these IPv6 addresses (etherType ipv6);
   * ebtables cannot read the target, so the iptables backend puts such rules in nftables' bridge family
   */
  notNaTarget?: string[]
}

/** the match fields only a `bridge` rule may use, and all it may use */
const L2_ONLY = ['etherType', 'notSrcMac', 'src6', 'notArpSrc', 'notArpSrcMac', 'notNaTarget']
const L2_FIELDS = ['iif', 'src', 'notSrc', ...L2_ONLY]

export type Action =
  | { type: 'accept' }
  | { type: 'return' }
  | { type: 'drop' }
  | { type: 'masquerade' }
  | { type: 'snat'; to: string }
  | { type: 'dnat'; to: string; port?: number }

export interface Rule {
  /** stable within its section, [a-z0-9-] */
  id: string
  hook: Hook
  match: Match
  action: Action
}

export interface Section {
  /** [a-z0-9-] */
  name: string
  /**
   * position in every hook: lower first, ties in the order given (default
   * 100, which the cluster section uses). Published ports use a lower value
   * so their hairpin masquerade comes before the cluster's "no NAT inside
   * the cluster network" RETURN.
   */
  order?: number
  rules: Rule[]
}

export interface FirewallSpec {
  sections: Section[]
}

/** What a dump of our chains/table looks like, reduced to rule tags per hook. */
export interface FirewallView {
  /** our table/chains exist and are hooked in (iptables: the jumps from the built-in chains) */
  hooked: boolean
  rules: Record<Hook, string[]>
  /** packets each rule matched, by tag, as the kernel counts them (nftables counts its drop rules only) */
  packets?: Record<string, number>
}

const NAME = /^[a-z0-9-]{1,40}$/
const MULTICAST = '224.0.0.0/4'

/**
 * Each rule's content hash, by the rule object: nothing changes a rule once
 * made, and a pass tags every rule several times (the expected view, the
 * edit, the drop counts). A section that keeps its rules from one pass to the
 * next (spoof's, per endpoint) is not hashed again: at 334 containers that is
 * 2,338 rules, a JSON text and a SHA-256 each (about 7 ms of a 19 ms pass in a
 * loaded agent's profile).
 */
const hashes = new WeakMap<Rule, string>()

/** tag written as the rule's comment */
export function ruleTag(section: string, rule: Rule): string {
  let h = hashes.get(rule)
  if (h === undefined) {
    h = createHash('sha256')
      .update(JSON.stringify([rule.hook, rule.match, rule.action]))
      .digest('hex')
      .slice(0, 8)
    hashes.set(rule, h)
  }
  return `plexus:${section}/${rule.id}#${h}`
}

/** spec with only the rules that pass keep, each section kept (so its rules keep their tags) (pure) */
export function withRules(spec: FirewallSpec, keep: (r: Rule) => boolean): FirewallSpec {
  return { sections: spec.sections.map((s) => ({ ...s, rules: s.rules.filter(keep) })) }
}

/** rules of one hook in order, each with its section's name */
export const DEFAULT_ORDER = 100

export function rulesOf(spec: FirewallSpec, hook: Hook): { section: string; rule: Rule }[] {
  const sections = [...spec.sections].sort((a, b) => (a.order ?? DEFAULT_ORDER) - (b.order ?? DEFAULT_ORDER))
  return sections.flatMap((s) =>
    s.rules.filter((r) => r.hook === hook).map((rule) => ({ section: s.name, rule })),
  )
}

/**
 * A hook's rules in runs by bridge port (pure). A frame meets a chain's rules
 * one by one, and the `bridge` hook's grow with the host's containers (7 to
 * 10 per veth), so both backends put a run of one port's rules in a chain of
 * its own, entered by one jump on `iif`: a frame passes one jump per port and
 * its own port's rules only. That is safe when no later rule can match the
 * port's frames (each names another port): a `return` then goes back to the
 * jumping chain instead of leaving ours and meets nothing more, as in one flat
 * chain. Any other rule stays inline (no `port`), and so does a run of one
 * rule: its jump would cost what it saves.
 */
export function portRuns<T extends { rule: Rule }>(rules: T[]): { port?: string; rules: T[] }[] {
  // where each port's rules, and the rules of no port, last appear: a later match is one past the run
  const last = new Map(rules.map(({ rule }, i) => [rule.match.iif, i]))
  const runs: { port?: string; rules: T[] }[] = []
  for (let i = 0; i < rules.length; ) {
    const iif = rules[i]?.rule.match.iif
    let end = i
    while (end < rules.length && rules[end]?.rule.match.iif === iif) end++
    const run = rules.slice(i, end)
    // (so a port with two runs keeps its first inline: a later one matches its frames)
    const laterMatch = (last.get(iif) ?? -1) >= end || (last.get(undefined) ?? -1) >= end
    runs.push(iif !== undefined && run.length > 1 && !laterMatch ? { port: iif, rules: run } : { rules: run })
    i = end
  }
  return runs
}

/**
 * How to turn one chain's rules `have` into `want` (rule tags, in order)
 * touching only what differs (pure). Both backends write batches as such
 * edits: with nf_tables every deleted or flushed rule makes the commit wait
 * for an RCU grace period, so rewriting a chain to add one rule costs tens of
 * milliseconds. `deletes`: positions in have, ascending. `inserts`: indexes
 * into want, ascending, each with the position in have of the kept rule it
 * goes before (absent: after the last one).
 */
export interface ChainEdit {
  deletes: number[]
  inserts: { want: number; before?: number }[]
}

export function chainEdit(have: string[], want: string[]): ChainEdit {
  const edit: ChainEdit = { deletes: [], inserts: [] }
  let old = 0 // position in have
  let next = 0 // index into want
  let pending: number[] = [] // new rules waiting for the kept rule they go before
  for (const part of diffArrays(have, want)) {
    for (let k = 0; k < part.count; k++) {
      if (part.removed) edit.deletes.push(old++)
      else if (part.added) pending.push(next++)
      else {
        for (const w of pending) edit.inserts.push({ want: w, before: old })
        pending = []
        old++
        next++
      }
    }
  }
  for (const w of pending) edit.inserts.push({ want: w })
  return edit
}

/** the view a correct dump of spec would give */
export function expectedView(spec: FirewallSpec): FirewallView {
  const rules = Object.fromEntries(
    HOOKS.map((h) => [h, rulesOf(spec, h).map((x) => ruleTag(x.section, x.rule))]),
  )
  return { hooked: true, rules: rules as Record<Hook, string[]> }
}

export function sameView(a: FirewallView, b: FirewallView): boolean {
  return a.hooked === b.hooked && HOOKS.every((h) => a.rules[h].join('\n') === b.rules[h].join('\n'))
}

/** the address as the kernel tools print it (RFC 5952), so a read-back compares equal */
export function canonicalIPv6(a: string): string {
  return new URL(`http://[${a}]`).hostname.slice(1, -1)
}

/** the 128-bit value of an IPv6 address as 32 hex digits (for a raw payload match) */
export function ipv6Hex(a: string): string {
  const [head = '', tail] = canonicalIPv6(a).split('::')
  const groups = (x: string | undefined) => (x ? x.split(':') : [])
  const fill = Array<string>(8 - groups(head).length - groups(tail).length).fill('0')
  return [...groups(head), ...(tail === undefined ? [] : fill), ...groups(tail)]
    .map((g) => g.padStart(4, '0'))
    .join('')
}

const IFNAME = /^[A-Za-z0-9_.@-]{1,15}$/
const isPort = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535
const isAddress = (a: string) => parseIPv4(a) !== undefined
const isNet = (a: string) => isAddress(a) || !('reason' in parseCidr(a))
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/
const isNet6 = (a: string) => {
  const [addr, len, ...rest] = a.split('/')
  const n = Number(len ?? 128)
  return rest.length === 0 && isIPv6(addr ?? '') && Number.isInteger(n) && n >= 0 && n <= 128
}

/** problems of a `bridge` rule: layer-2 fields only there, each with the ethertype it needs */
function bridgeProblems(where: string, r: Rule): string[] {
  const p: string[] = []
  const m = r.match as Record<string, unknown>
  const fields = Object.keys(m).filter((k) => m[k] !== undefined)
  if (r.hook !== 'bridge') {
    for (const k of fields.filter((f) => L2_ONLY.includes(f)))
      p.push(`rule "${where}": ${k} needs hook bridge`)
    return p
  }
  for (const k of fields.filter((f) => !L2_FIELDS.includes(f)))
    p.push(`rule "${where}": ${k} cannot be matched in hook bridge`)
  const e = r.match.etherType
  if (e !== undefined && !['ipv4', 'ipv6', 'arp'].includes(e))
    p.push(`rule "${where}": unknown etherType "${e}"`)
  const need = {
    src: 'ipv4',
    notSrc: 'ipv4',
    src6: 'ipv6',
    notArpSrc: 'arp',
    notArpSrcMac: 'arp',
    notNaTarget: 'ipv6',
  } as const
  for (const [k, type] of Object.entries(need))
    if (m[k] !== undefined && e !== type) p.push(`rule "${where}": ${k} needs etherType ${type}`)
  for (const k of ['notSrcMac', 'notArpSrcMac'] as const) {
    const v = r.match[k]
    if (v !== undefined && !(typeof v === 'string' && MAC.test(v)))
      p.push(`rule "${where}": ${k} "${v}" is not a MAC address (lower case, colons)`)
  }
  const v6 = r.match.src6
  if (v6 !== undefined && !(typeof v6 === 'string' && isNet6(v6)))
    p.push(`rule "${where}": src6 "${v6}" is not an IPv6 address or CIDR`)
  const na = r.match.notNaTarget
  if (na !== undefined && !(Array.isArray(na) && na.length > 0 && na.every((a) => isIPv6(String(a)))))
    p.push(`rule "${where}": notNaTarget must list IPv6 addresses`)
  const arp = r.match.notArpSrc
  if (arp !== undefined && !(typeof arp === 'string' && isAddress(arp)))
    p.push(`rule "${where}": notArpSrc "${arp}" is not an IPv4 address`)
  return p
}

/**
 * Every value that ends up in iptables-restore input or an nft script is
 * checked here, so a rule can never smuggle in text of its own.
 */
function valueProblems(where: string, r: Rule): string[] {
  const p: string[] = []
  const m = r.match
  for (const k of ['src', 'notSrc', 'dst', 'notDst'] as const) {
    const v = m[k]
    if (v !== undefined && !(typeof v === 'string' && isNet(v)))
      p.push(`rule "${where}": ${k} "${v}" is not an IPv4 address or CIDR`)
  }
  for (const k of ['iif', 'oif'] as const) {
    const v = m[k]
    if (v !== undefined && !(typeof v === 'string' && IFNAME.test(v)))
      p.push(`rule "${where}": ${k} "${v}" is not an interface name`)
  }
  if (m.proto !== undefined && m.proto !== 'tcp' && m.proto !== 'udp')
    p.push(`rule "${where}": proto must be tcp or udp`)
  if (m.dport !== undefined && !isPort(m.dport))
    p.push(`rule "${where}": dport ${m.dport} is not a port (1-65535)`)
  const states = ['new', 'established', 'related', 'invalid']
  if (
    m.ctState !== undefined &&
    !(Array.isArray(m.ctState) && m.ctState.length > 0 && m.ctState.every((x) => states.includes(x)))
  )
    p.push(`rule "${where}": ctState must list some of ${states.join(', ')}`)
  for (const k of ['dstLocal', 'ctDnat'] as const) {
    if (m[k] !== undefined && typeof m[k] !== 'boolean') p.push(`rule "${where}": ${k} must be true or false`)
  }
  const a = r.action
  if ((a.type === 'dnat' || a.type === 'snat') && !(typeof a.to === 'string' && isAddress(a.to))) {
    p.push(`rule "${where}": ${a.type} target "${a.to}" is not an IPv4 address`)
  }
  if (a.type === 'dnat' && a.port !== undefined && !isPort(a.port))
    p.push(`rule "${where}": dnat port ${a.port} is not a port (1-65535)`)
  if (!['accept', 'return', 'drop', 'masquerade', 'snat', 'dnat'].includes(a.type))
    p.push(`rule "${where}": unknown action "${a.type}"`)
  if (!HOOKS.includes(r.hook)) p.push(`rule "${where}": unknown hook "${r.hook}"`)
  return [...p, ...bridgeProblems(where, r)]
}

/** Refuses specs the renderers could not express safely (names, actions in the wrong hook). */
export function checkSpec(spec: FirewallSpec): string[] {
  const problems: string[] = []
  const names = new Set<string>()
  for (const s of spec.sections) {
    if (!NAME.test(s.name)) problems.push(`section name "${s.name}" must match ${NAME}`)
    if (s.order !== undefined && !Number.isInteger(s.order))
      problems.push(`section "${s.name}": order must be an integer`)
    if (names.has(s.name)) problems.push(`section "${s.name}" appears twice`)
    names.add(s.name)
    const ids = new Set<string>()
    for (const r of s.rules) {
      const where = `${s.name}/${r.id}`
      if (!NAME.test(r.id)) problems.push(`rule id "${where}" must match ${NAME}`)
      if (ids.has(r.id)) problems.push(`rule "${where}" appears twice`)
      ids.add(r.id)
      const nat = NAT_HOOKS.has(r.hook)
      const t = r.action.type
      if (
        (t === 'dnat' && r.hook !== 'prerouting' && r.hook !== 'output') ||
        ((t === 'snat' || t === 'masquerade') && r.hook !== 'postrouting')
      ) {
        problems.push(`rule "${where}": ${t} is not allowed in ${r.hook}`)
      }
      if (nat && (t === 'accept' || t === 'drop'))
        problems.push(`rule "${where}": ${t} belongs in a filter hook, not ${r.hook}`)
      if (r.match.dport !== undefined && !r.match.proto) problems.push(`rule "${where}": dport needs proto`)
      problems.push(...valueProblems(where, r))
    }
  }
  return problems
}

/**
 * The datapath's own section: accept forwarding to and from the cluster
 * network; with IPMasq, masquerade what leaves the cluster network and
 * nothing inside it (flannel's rules).
 */
export function clusterSection(network: NetworkConfig): Section {
  const net = network.Network
  const rules: Rule[] = [
    { id: 'fwd-from-cluster', hook: 'forward', match: { src: net }, action: { type: 'accept' } },
    { id: 'fwd-to-cluster', hook: 'forward', match: { dst: net }, action: { type: 'accept' } },
  ]
  // WireGuard authenticates every packet itself (an unknown sender gets no answer), so its port is open
  // to all, ahead of a host INPUT policy that might drop it; VXLAN's port is the isolation section's
  if (network.Backend.Type === 'wireguard')
    rules.push({
      id: 'wg-port',
      hook: 'input',
      match: { proto: 'udp', dport: network.Backend.Port },
      action: { type: 'accept' },
    })
  if (network.IPMasq) {
    rules.push(
      { id: 'nat-inside', hook: 'postrouting', match: { src: net, dst: net }, action: { type: 'return' } },
      {
        id: 'nat-multicast',
        hook: 'postrouting',
        match: { src: net, dst: MULTICAST },
        action: { type: 'return' },
      },
      {
        id: 'nat-leaving',
        hook: 'postrouting',
        match: { src: net, notDst: net },
        action: { type: 'masquerade' },
      },
    )
  }
  return { name: 'cluster', rules }
}
