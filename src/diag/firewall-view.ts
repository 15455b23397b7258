// Pure readers of the host's firewall as dumped by iptables-save and
// `nft -j list ruleset`, for the questions diag asks: which foreign rule or
// policy would drop overlay or forwarded container traffic, and does it come
// ahead of Plexus' own chains. Plexus' own rules are recognised by their
// chains (PLEXUS-*) and table (`inet plexus`, `bridge plexus`), as the
// datapath names them (src/datapath/README.md, Firewall).
import { containsAddress, mask, parseIPv4 } from '../ipam/cidr.js'

/** one built-in iptables chain of the filter table: its policy and its rules in order */
export interface XtChain {
  policy: string
  rules: string[]
}

/** filter-table built-in chains from iptables-save text (other tables are skipped) */
export function parseIptablesFilter(save: string): Map<string, XtChain> {
  const chains = new Map<string, XtChain>()
  let inFilter = false
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      inFilter = line === '*filter'
      continue
    }
    if (!inFilter) continue
    const decl = /^:(\S+) (\S+)/.exec(line)
    if (decl?.[1] && decl[2]) {
      chains.set(decl[1], { policy: decl[2], rules: [] })
      continue
    }
    const rule = /^-A (\S+) (.*)$/.exec(line)
    if (rule?.[1] && rule[2] !== undefined) chains.get(rule[1])?.rules.push(rule[2])
  }
  return chains
}

/** what a packet is, as far as a rule's match is concerned */
export interface FlowMatch {
  proto?: 'udp' | 'tcp' | 'icmp'
  dport?: number
  src?: string
  dst?: string
}

const DROPPING = /-j (DROP|REJECT)\b/

/**
 * Whether an iptables rule (iptables-save syntax, without `-A CHAIN`) would
 * drop this flow, as far as its common matches tell: protocol, destination
 * port, and source/destination when given as plain addresses. A match the
 * reader does not understand counts as "may match" (conservative for a
 * diagnosis: the rule is shown as evidence, the operator judges).
 */
export function xtRuleDrops(rule: string, flow: FlowMatch): boolean {
  if (!DROPPING.test(rule)) return false
  const proto = /(?:^| )-p (\S+)/.exec(rule)?.[1]
  if (proto && flow.proto && proto !== flow.proto) return false
  const dport = /--dport (\d+)/.exec(rule)?.[1]
  if (dport && flow.dport !== undefined && Number(dport) !== flow.dport) return false
  if (dport && flow.dport === undefined) return false
  for (const [flag, addr] of [
    ['-s', flow.src],
    ['-d', flow.dst],
  ] as const) {
    const m = new RegExp(`(?:^| )(! )?${flag} (\\d+\\.\\d+\\.\\d+\\.\\d+)(?:/(\\d+))?`).exec(rule)
    if (!m?.[2] || !addr) continue
    const inside = ipInCidr(addr, m[2], Number(m[3] ?? 32))
    if (inside === Boolean(m[1])) return false
  }
  return true
}

/**
 * The rules of a built-in chain that come before its jump to Plexus' chain
 * (all of them when the jump is missing), and whether the jump is there.
 */
export function ahead(chain: XtChain, plexusChain: string): { rules: string[]; jump: boolean } {
  const i = chain.rules.findIndex((r) => r === `-j ${plexusChain}` || r.endsWith(` -j ${plexusChain}`))
  return i < 0 ? { rules: chain.rules, jump: false } : { rules: chain.rules.slice(0, i), jump: true }
}

/** whether ip is inside net/prefix; an address it cannot read counts as inside ("may match") */
function ipInCidr(ip: string, net: string, prefix: number): boolean {
  const addr = parseIPv4(ip)
  const base = parseIPv4(net)
  if (addr === undefined || base === undefined) return true
  return containsAddress({ base: (base & mask(prefix)) >>> 0, prefix }, addr)
}

/** a base chain of some nftables table that is not Plexus' own */
export interface NftBaseChain {
  family: string
  table: string
  name: string
  hook: string
  priority: number
  policy: string
}

/** iptables-nft's tables: already read through iptables-save, so not reported twice */
const XT_TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security'])
const PLEXUS_TABLE = 'plexus'

/**
 * Foreign base chains from `nft -j list ruleset` output. In nftables every
 * base chain on a hook sees the packet, whatever an earlier table decided: an
 * accept in Plexus' table does not save it from another table's drop policy.
 */
export function foreignNftChains(ruleset: unknown, opts: { skipXtables: boolean }): NftBaseChain[] {
  const items = (ruleset as { nftables?: unknown[] } | undefined)?.nftables
  if (!Array.isArray(items)) return []
  const out: NftBaseChain[] = []
  for (const item of items) {
    const c = (item as { chain?: Record<string, unknown> }).chain
    if (!c || typeof c.hook !== 'string') continue
    const table = String(c.table)
    const family = String(c.family)
    if (table === PLEXUS_TABLE) continue
    if (opts.skipXtables && (family === 'ip' || family === 'ip6') && XT_TABLES.has(table)) continue
    out.push({
      family,
      table,
      name: String(c.name),
      hook: c.hook,
      priority: Number(c.prio ?? 0),
      policy: String(c.policy ?? 'accept'),
    })
  }
  return out
}

/** foreign nft rules whose verdict is drop or reject, as `family table chain: expr` evidence */
export function foreignNftDrops(ruleset: unknown, opts: { skipXtables: boolean; hooks: string[] }): string[] {
  const items = (ruleset as { nftables?: unknown[] } | undefined)?.nftables
  if (!Array.isArray(items)) return []
  const chains = new Set(
    foreignNftChains(ruleset, opts)
      .filter((c) => opts.hooks.includes(c.hook))
      .map((c) => `${c.family} ${c.table} ${c.name}`),
  )
  const out: string[] = []
  for (const item of items) {
    const r = (item as { rule?: { family: string; table: string; chain: string; expr?: unknown[] } }).rule
    if (!r || !chains.has(`${r.family} ${r.table} ${r.chain}`)) continue
    const expr = JSON.stringify(r.expr ?? [])
    if (/"(drop|reject)"/.test(expr)) out.push(`${r.family} ${r.table} ${r.chain}: ${expr}`)
  }
  return out
}

type NftRule = { family: string; table: string; chain: string; handle?: number; expr?: unknown[] }

/** the rules of one chain, in order, from `nft -j list ruleset` */
function nftRulesOf(ruleset: unknown, c: NftBaseChain): NftRule[] {
  const items = (ruleset as { nftables?: unknown[] } | undefined)?.nftables
  if (!Array.isArray(items)) return []
  return items.flatMap((item) => {
    const r = (item as { rule?: NftRule }).rule
    return r && r.family === c.family && r.table === c.table && r.chain === c.name ? [r] : []
  })
}

/** one value of a match's right side against a flow's field: an address (or prefix), a port, a protocol */
function nftValueHolds(right: unknown, value: string | number | undefined): boolean {
  if (value === undefined) return true
  if (Array.isArray((right as { set?: unknown[] })?.set))
    return ((right as { set: unknown[] }).set ?? []).some((v) => nftValueHolds(v, value))
  const range = (right as { range?: [unknown, unknown] })?.range
  if (Array.isArray(range) && typeof value === 'number')
    return value >= Number(range[0]) && value <= Number(range[1])
  const prefix = (right as { prefix?: { addr?: string; len?: number } })?.prefix
  if (prefix?.addr && typeof value === 'string') return ipInCidr(value, prefix.addr, Number(prefix.len ?? 32))
  if (typeof right === 'string' && typeof value === 'string' && parseIPv4(right) !== undefined)
    return ipInCidr(value, right, 32)
  if (typeof right === 'string' || typeof right === 'number') return String(right) === String(value)
  return true
}

/**
 * Whether one nft match statement holds for the flow: `true` when it does or when the reader does
 * not understand it (may match, as for iptables rules), `false` when it surely does not.
 */
function nftMatchHolds(
  m: { op?: string; left?: unknown; right?: unknown },
  flow: FlowMatch,
): { holds: boolean; known: boolean } {
  const payload = (m.left as { payload?: { protocol?: string; field?: string } })?.payload
  const meta = (m.left as { meta?: { key?: string } })?.meta
  let value: string | number | undefined
  let known = true
  if (payload?.protocol === 'ip' && payload.field === 'saddr') value = flow.src
  else if (payload?.protocol === 'ip' && payload.field === 'daddr') value = flow.dst
  else if (payload?.protocol === 'ip' && payload.field === 'protocol') value = flow.proto
  else if (meta?.key === 'l4proto') value = flow.proto
  else if ((payload?.protocol === 'tcp' || payload?.protocol === 'udp') && payload.field === 'dport') {
    // `tcp dport` also says the protocol: a udp flow never matches it
    if (flow.proto && flow.proto !== payload.protocol) return { holds: m.op === '!=', known: true }
    value = flow.dport
  } else known = false
  if (!known || value === undefined) return { holds: true, known: false }
  const equal = nftValueHolds(m.right, value)
  return { holds: m.op === '!=' ? !equal : equal, known: true }
}

/**
 * The first rule of a foreign base chain that would drop or reject this flow, as evidence
 * (`family table chain handle N`), unless an accept rule earlier in the same chain surely takes it
 * first (an accept ends only that chain; the others on the hook still see the packet).
 */
export function nftChainDrops(ruleset: unknown, chain: NftBaseChain, flow: FlowMatch): string | undefined {
  for (const r of nftRulesOf(ruleset, chain)) {
    const expr = (r.expr ?? []) as Record<string, unknown>[]
    const verdict = expr.find((s) => 'drop' in s || 'reject' in s || 'accept' in s)
    if (!verdict) continue
    const matches = expr.flatMap((s) => (s.match ? [nftMatchHolds(s.match as object, flow)] : []))
    if (matches.some((x) => !x.holds)) continue
    if ('accept' in verdict) {
      if (matches.every((x) => x.known)) return undefined
      continue
    }
    return `${r.family} ${r.table} ${r.chain} handle ${r.handle ?? '?'}: ${JSON.stringify(r.expr)}`
  }
  return undefined
}
