// nftables backend: one table `inet plexus`, written in single `nft -f`
// transactions, so a reader never sees a half-written table and nothing
// outside our table is touched. A batch edits the table from what it held
// at the last listing or write (rules deleted by handle, inserted before the
// next rule kept), as the iptables backend does: deleting a table deletes its
// rules, and every deleted rule makes the commit wait for an RCU grace period.
// The table is replaced whole when it is not all there or an edit fails.
// Layer-2 rules (hook `bridge`) live in a second table, `bridge plexus`,
// written in the same transactions: the inet family never sees bridged frames.
// There a run of one port's rules sits in a chain of its own, port-<port>,
// entered by one `iifname` jump from prerouting (portRuns in model.ts).
import { PlexusError } from '../../lib/errors.js'
import type { FirewallBackend } from './backend.js'
import { generationIn, run, type Tool, WarmTools } from './exec.js'
import {
  chainEdit,
  type FirewallSpec,
  type FirewallView,
  HOOKS,
  type Hook,
  ipv6Hex,
  type Match,
  portRuns,
  type Rule,
  rulesOf,
  ruleTag,
} from './model.js'

export const NFT_TABLE = 'plexus'

export type Family = 'inet' | 'bridge'
const FAMILIES: readonly Family[] = ['inet', 'bridge']
const familyOf = (h: Hook): Family => (h === 'bridge' ? 'bridge' : 'inet')
const hooksOf = (families: readonly Family[]) => HOOKS.filter((h) => families.includes(familyOf(h)))
/** the chain a hook's rules go in (its table: familyOf), named as the kernel hook it sits on */
const chainOf = (h: Hook): string => (h === 'bridge' ? 'prerouting' : h)
const hookOf = (family: string, chain: string): Hook | undefined =>
  HOOKS.find((h) => familyOf(h) === family && chainOf(h) === chain)

const CHAIN_TYPE: Record<Hook, string> = {
  bridge: 'type filter hook prerouting priority filter; policy accept;',
  forward: 'type filter hook forward priority filter; policy accept;',
  input: 'type filter hook input priority filter; policy accept;',
  prerouting: 'type nat hook prerouting priority dstnat; policy accept;',
  output: 'type nat hook output priority -100; policy accept;',
  postrouting: 'type nat hook postrouting priority srcnat; policy accept;',
}

function matchExpr(m: Match): string[] {
  const e: string[] = []
  if (m.iif) e.push(`iifname "${m.iif}"`)
  if (m.oif) e.push(`oifname "${m.oif}"`)
  if (m.notSrcMac) e.push(`ether saddr != ${m.notSrcMac}`)
  if (m.etherType) e.push(`ether type ${{ ipv4: 'ip', ipv6: 'ip6', arp: 'arp' }[m.etherType]}`)
  if (m.src6) e.push(`ip6 saddr ${m.src6}`)
  // the target sits after type, code, checksum and flags (RFC 4861 4.4); nft has no name for it
  if (m.notNaTarget)
    e.push(
      `icmpv6 type nd-neighbor-advert @th,64,128 != { ${m.notNaTarget.map((a) => `0x${ipv6Hex(a)}`).join(', ')} }`,
    )
  if (m.notArpSrc) e.push(`arp saddr ip != ${m.notArpSrc}`)
  if (m.notArpSrcMac) e.push(`arp saddr ether != ${m.notArpSrcMac}`)
  if (m.src) e.push(`ip saddr ${m.src}`)
  if (m.notSrc) e.push(`ip saddr != ${m.notSrc}`)
  if (m.dst) e.push(`ip daddr ${m.dst}`)
  if (m.notDst) e.push(`ip daddr != ${m.notDst}`)
  if (m.dstLocal) e.push('fib daddr type local')
  if (m.proto) e.push(m.dport === undefined ? `meta l4proto ${m.proto}` : `${m.proto} dport ${m.dport}`)
  if (m.ctState?.length) e.push(`ct state ${m.ctState.join(',')}`)
  if (m.ctDnat) e.push('ct status dnat')
  return e
}

function actionExpr(r: Rule): string {
  const a = r.action
  switch (a.type) {
    case 'drop':
      // counted: the drops are read back into the agent's counters
      return 'counter drop'
    case 'accept':
    case 'return':
    case 'masquerade':
      return a.type
    case 'snat':
      return `snat ip to ${a.to}`
    case 'dnat':
      return `dnat ip to ${a.port === undefined ? a.to : `${a.to}:${a.port}`}`
  }
}

export function renderRule(section: string, r: Rule): string {
  return [...matchExpr(r.match), actionExpr(r), `comment "${ruleTag(section, r)}"`].join(' ')
}

const PORT_CHAIN = 'port-'
/** a bridge port's chain (portRuns): its name keeps to the characters of an nft identifier */
const portChainOf = (iif: string) =>
  `${PORT_CHAIN}${/^[A-Za-z0-9_-]+$/.test(iif) ? iif : `x${Buffer.from(iif).toString('hex')}`}`
/** the comment of the jump to a port chain */
const PORT_JUMP = 'plexus:port/'
const isPortChain = (family: string, name: string) => family === 'bridge' && name.startsWith(PORT_CHAIN)

/** a rule as written: its tag, and its text for `nft -f` (made only for the rules a script writes) */
interface Entry {
  tag: string
  text: () => string
}

/**
 * A hook's chains as spec wants them (pure): its base chain's rules, a jump
 * per port chain among them, and the port chains' rules (`bridge` only).
 */
function planOf(spec: FirewallSpec, h: Hook): { base: Entry[]; ports: Map<string, Entry[]> } {
  const entry = ({ section, rule }: { section: string; rule: Rule }): Entry => ({
    tag: ruleTag(section, rule),
    text: () => renderRule(section, rule),
  })
  const base: Entry[] = []
  const ports = new Map<string, Entry[]>()
  for (const run of h === 'bridge' ? portRuns(rulesOf(spec, h)) : [{ rules: rulesOf(spec, h) }]) {
    if (run.port === undefined) {
      base.push(...run.rules.map(entry))
      continue
    }
    const chain = portChainOf(run.port)
    ports.set(chain, run.rules.map(entry))
    const tag = `${PORT_JUMP}${chain}`
    base.push({ tag, text: () => `iifname "${run.port}" jump ${chain} comment "${tag}"` })
  }
  return { base, ports }
}

/** `nft -f` lines that delete our tables (creating them first, so a missing one is no error) */
const dropTables = (families: readonly Family[]) =>
  families.flatMap((f) => [`table ${f} ${NFT_TABLE}`, `delete table ${f} ${NFT_TABLE}`])

/** the `nft -f` script that replaces our tables (of these families) with spec in one transaction (pure) */
export function renderScript(spec: FirewallSpec, families: readonly Family[] = FAMILIES): string {
  const lines = dropTables(families)
  const chain = (name: string, head: string[], rules: Entry[]) =>
    lines.push(`\tchain ${name} {`, ...head, ...rules.map((r) => `\t\t${r.text()}`), '\t}')
  for (const f of families) {
    lines.push(`table ${f} ${NFT_TABLE} {`)
    for (const h of HOOKS.filter((x) => familyOf(x) === f)) {
      const plan = planOf(spec, h)
      // a port chain before the base chain that jumps to it
      for (const [name, rules] of plan.ports) chain(name, [], rules)
      chain(chainOf(h), [`\t\t${CHAIN_TYPE[h]}`], plan.base)
    }
    lines.push('}')
  }
  return `${lines.join('\n')}\n`
}

interface NftJson {
  nftables?: Array<{
    chain?: { family: string; name: string; hook?: string }
    rule?: {
      family: string
      chain: string
      comment?: string
      handle: number
      expr?: { counter?: { packets: number } }[]
    }
  }>
}

/** a rule as held: its tag (its comment) and its handle */
interface Held {
  tag: string
  handle: number
}

/** Our table with rule handles: what an edit starts from. */
export interface NftTable {
  /** every base chain is there */
  hooked: boolean
  /** the base chains' rules (the jumps to port chains among them) */
  rules: Record<Hook, Held[]>
  /** the port chains' rules (bridge family) */
  ports: Map<string, Held[]>
  /** packets counted by the rules that count (the drops), by tag */
  packets: Record<string, number>
}

const noRules = () => Object.fromEntries(HOOKS.map((h) => [h, []])) as unknown as NftTable['rules']

/** our tables (of these families) as `nft -j list table` shows them, one listing each (pure) */
export function parseTable(listings: string[], families: readonly Family[] = FAMILIES): NftTable {
  const chains = new Set<Hook>()
  const rules = noRules()
  const ports = new Map<string, Held[]>()
  const packets: Record<string, number> = {}
  for (const item of listings.flatMap((json) => (JSON.parse(json) as NftJson).nftables ?? [])) {
    const c = item.chain
    const hook = c && hookOf(c.family, c.name)
    if (c?.hook && hook && c.hook === c.name) chains.add(hook)
    if (c && isPortChain(c.family, c.name) && !ports.has(c.name)) ports.set(c.name, [])
    const r = item.rule
    if (!r) continue
    const ruleHook = hookOf(r.family, r.chain)
    const held = ruleHook ? rules[ruleHook] : isPortChain(r.family, r.chain) ? ports.get(r.chain) : undefined
    if (!held) continue
    const tag = r.comment ?? `handle ${r.handle}`
    held.push({ tag, handle: r.handle })
    const counted = r.expr?.find((x) => x.counter)?.counter
    if (counted) packets[tag] = counted.packets
  }
  return { hooked: hooksOf(families).every((h) => chains.has(h)), rules, ports, packets }
}

/**
 * The `bridge` hook's rules in the order a frame meets them, a port chain's
 * in place of the jump to it (pure). Given the spec the caller expects, a
 * rule outside the chain planOf puts it in shows as `<tag> in <chain>`, so a
 * flat chain of an earlier release differs, and is rewritten.
 */
function bridgeView(t: NftTable, want?: FirewallSpec): string[] {
  const wantedIn = new Map<string, string>()
  for (const [chain, rules] of want ? planOf(want, 'bridge').ports : [])
    for (const r of rules) wantedIn.set(r.tag, chain)
  const shown = (tag: string, chain: string) =>
    want && (wantedIn.get(tag) ?? chainOf('bridge')) !== chain ? `${tag} in ${chain}` : tag
  return t.rules.bridge.flatMap((r) => {
    const to = r.tag.startsWith(PORT_JUMP) ? r.tag.slice(PORT_JUMP.length) : ''
    const port = t.ports.get(to)
    return port ? port.map((x) => shown(x.tag, to)) : [shown(r.tag, chainOf('bridge'))]
  })
}

function viewOf(t: NftTable, want?: FirewallSpec): FirewallView {
  return {
    hooked: t.hooked,
    rules: Object.fromEntries(
      HOOKS.map((h) => [h, h === 'bridge' ? bridgeView(t, want) : t.rules[h].map((r) => r.tag)]),
    ) as Record<Hook, string[]>,
    packets: t.packets,
  }
}

/** our tables as the view compares them (pure parse of `nft -j list table`, one listing each) */
export function parseListing(...listings: string[]): FirewallView {
  return viewOf(parseTable(listings))
}

/** the lines that turn one chain's rules from have into want (chainEdit) */
function editLines(chain: string, have: Held[], want: Entry[]): string[] {
  const { deletes, inserts } = chainEdit(
    have.map((r) => r.tag),
    want.map((w) => w.tag),
  )
  return [
    ...deletes.map((i) => `delete rule ${chain} handle ${have[i]?.handle}`),
    ...inserts.map(({ want: i, before }) => {
      const text = want[i]?.text()
      return before === undefined
        ? `add rule ${chain} ${text}`
        : `insert rule ${chain} position ${have[before]?.handle} ${text}`
    }),
  ]
}

/**
 * The `nft -f` script that turns table into spec (pure; empty when they
 * agree): deletions by handle, and each new rule inserted before the next
 * rule that stays, or appended. A new port chain is made and filled before
 * the jump to it; one no longer wanted is emptied and deleted after.
 */
export function renderEdit(spec: FirewallSpec, table: NftTable): string {
  const lines: string[] = []
  for (const h of HOOKS) {
    const plan = planOf(spec, h)
    for (const [name, rules] of plan.ports) {
      if (!table.ports.has(name)) lines.push(`add chain bridge ${NFT_TABLE} ${name}`)
      lines.push(...editLines(`bridge ${NFT_TABLE} ${name}`, table.ports.get(name) ?? [], rules))
    }
    lines.push(...editLines(`${familyOf(h)} ${NFT_TABLE} ${chainOf(h)}`, table.rules[h], plan.base))
    if (h === 'bridge')
      for (const name of table.ports.keys())
        if (!plan.ports.has(name))
          lines.push(`flush chain bridge ${NFT_TABLE} ${name}`, `delete chain bridge ${NFT_TABLE} ${name}`)
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}

/**
 * The table after an edit (pure): spec's rules, with the handles of the
 * rules kept from table and of the new ones from `nft --echo --handle`.
 * Undefined when a handle cannot be told: the next batch lists first.
 */
export function afterEdit(spec: FirewallSpec, table: NftTable, echo: string): NftTable | undefined {
  const added = new Map<string, number>()
  for (const m of echo.matchAll(/^(?:add|insert) rule (\S+) \S+ (\S+) .*comment "([^"]+)" # handle (\d+)$/gm))
    added.set(`${m[1]} ${m[2]} ${m[3]}`, Number(m[4]))
  /** want's rules with their handles, or undefined if one cannot be told */
  const held = (family: string, chain: string, have: Held[], want: Entry[]): Held[] | undefined => {
    const kept = new Map(have.map((r) => [r.tag, r.handle]))
    const out: Held[] = []
    for (const { tag } of want) {
      const handle = added.get(`${family} ${chain} ${tag}`) ?? kept.get(tag)
      if (handle === undefined) return undefined
      out.push({ tag, handle })
    }
    return out
  }
  const rules = noRules()
  const ports = new Map<string, Held[]>()
  for (const h of HOOKS) {
    const plan = planOf(spec, h)
    const base = held(familyOf(h), chainOf(h), table.rules[h], plan.base)
    if (!base) return undefined
    rules[h] = base
    for (const [name, want] of plan.ports) {
      const port = held('bridge', name, table.ports.get(name) ?? [], want)
      if (!port) return undefined
      ports.set(name, port)
    }
  }
  // counters of a rule kept stay as they were; a new rule starts at 0
  return { hooked: true, rules, ports, packets: table.packets }
}

/** nft for an edit, printing the handles of the rules it adds */
const EDIT: Tool = ['nft', ['--echo', '--handle', '-f', '-']]

const EMPTY_TABLE = JSON.stringify({ nftables: [] })

export class NftablesFirewall implements FirewallBackend {
  readonly name = 'nftables'
  readonly variant = undefined
  /** our table as of the last listing or write; see the top of this file */
  private known?: NftTable
  /** the edit's nft process of the next batch, started after the last (prepare()) */
  private readonly tools: WarmTools

  /** families: the tables it keeps (the iptables backend keeps only the bridge one, for rules ebtables cannot express) */
  constructor(
    private readonly netns?: string,
    private readonly families: readonly Family[] = FAMILIES,
  ) {
    this.tools = new WarmTools(netns)
  }

  private async listing(family: Family): Promise<string> {
    try {
      return await run('nft', ['-j', 'list', 'table', family, NFT_TABLE], undefined, this.netns)
    } catch (err) {
      if (!(err instanceof PlexusError && /No such file or directory/.test(err.message))) throw err
      return EMPTY_TABLE
    }
  }

  private async list(): Promise<NftTable> {
    this.known = parseTable(await Promise.all(this.families.map((f) => this.listing(f))), this.families)
    return this.known
  }

  async read(want?: FirewallSpec): Promise<FirewallView> {
    return viewOf(await this.list(), want)
  }

  generation(): Promise<number | undefined> {
    return generationIn(this.netns)
  }

  async apply(spec: FirewallSpec): Promise<void> {
    const table = this.known ?? (await this.list())
    this.known = undefined
    if (table.hooked) {
      const script = renderEdit(spec, table)
      try {
        const echo = script ? await this.tools.run(...EDIT, script) : ''
        this.known = afterEdit(spec, table, echo)
        return
      } catch {
        // the table changed behind our back (a handle is gone): replace it whole
      }
    }
    await run('nft', ['-f', '-'], renderScript(spec, this.families), this.netns)
  }

  prepare(): void {
    this.tools.prepare([EDIT])
  }

  release(): void {
    this.tools.release()
  }

  async remove(): Promise<boolean> {
    const listings = await Promise.all(this.families.map((f) => this.listing(f)))
    this.known = undefined
    const present = listings.some((l) => l !== EMPTY_TABLE)
    if (present) await run('nft', ['-f', '-'], `${dropTables(this.families).join('\n')}\n`, this.netns)
    return present
  }
}
