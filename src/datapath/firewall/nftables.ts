// nftables backend: one table `inet plexus`, written in single `nft -f`
// transactions, so a reader never sees a half-written table and nothing
// outside our table is touched. A batch edits the table from what it held
// at the last listing or write (rules deleted by handle, inserted before the
// next rule kept), as the iptables backend does: deleting a table deletes its
// rules, and every deleted rule makes the commit wait for an RCU grace period.
// The table is replaced whole when it is not all there or an edit fails.
import { PlexusError } from '../../lib/errors.js'
import type { FirewallBackend } from './backend.js'
import { run } from './exec.js'
import {
  chainEdit,
  type FirewallSpec,
  type FirewallView,
  HOOKS,
  type Hook,
  type Match,
  type Rule,
  rulesOf,
  ruleTag,
} from './model.js'

export const NFT_TABLE = 'plexus'

const CHAIN_TYPE: Record<Hook, string> = {
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
    case 'accept':
    case 'return':
    case 'drop':
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

/** the `nft -f` script that replaces our table with spec in one transaction (pure) */
export function renderScript(spec: FirewallSpec): string {
  const lines = [`table inet ${NFT_TABLE}`, `delete table inet ${NFT_TABLE}`, `table inet ${NFT_TABLE} {`]
  for (const h of HOOKS) {
    lines.push(`\tchain ${h} {`, `\t\t${CHAIN_TYPE[h]}`)
    for (const { section, rule } of rulesOf(spec, h)) lines.push(`\t\t${renderRule(section, rule)}`)
    lines.push('\t}')
  }
  lines.push('}')
  return `${lines.join('\n')}\n`
}

interface NftJson {
  nftables?: Array<{
    chain?: { name: string; hook?: string }
    rule?: { chain: string; comment?: string; handle: number }
  }>
}

/** Our table with rule handles: what an edit starts from. */
export interface NftTable {
  /** every base chain is there */
  hooked: boolean
  rules: Record<Hook, { tag: string; handle: number }[]>
}

const noRules = () => Object.fromEntries(HOOKS.map((h) => [h, []])) as unknown as NftTable['rules']

/** our table as `nft -j list table` shows it (pure) */
export function parseTable(json: string): NftTable {
  const doc = JSON.parse(json) as NftJson
  const chains = new Set<string>()
  const rules = noRules()
  for (const item of doc.nftables ?? []) {
    if (
      item.chain?.hook &&
      (HOOKS as string[]).includes(item.chain.name) &&
      item.chain.hook === item.chain.name
    ) {
      chains.add(item.chain.name)
    }
    const r = item.rule
    if (r && (HOOKS as string[]).includes(r.chain))
      rules[r.chain as Hook].push({ tag: r.comment ?? `handle ${r.handle}`, handle: r.handle })
  }
  return { hooked: HOOKS.every((h) => chains.has(h)), rules }
}

function viewOf(t: NftTable): FirewallView {
  return {
    hooked: t.hooked,
    rules: Object.fromEntries(HOOKS.map((h) => [h, t.rules[h].map((r) => r.tag)])) as Record<Hook, string[]>,
  }
}

/** our table as the view compares it (pure parse of `nft -j list table`) */
export function parseListing(json: string): FirewallView {
  return viewOf(parseTable(json))
}

/**
 * The `nft -f` script that turns table into spec (pure; empty when they
 * agree): deletions by handle, and each new rule inserted before the next
 * rule that stays, or appended.
 */
export function renderEdit(spec: FirewallSpec, table: NftTable): string {
  const lines: string[] = []
  for (const h of HOOKS) {
    const have = table.rules[h]
    const want = rulesOf(spec, h)
    const { deletes, inserts } = chainEdit(
      have.map((r) => r.tag),
      want.map((x) => ruleTag(x.section, x.rule)),
    )
    for (const i of deletes) lines.push(`delete rule inet ${NFT_TABLE} ${h} handle ${have[i]?.handle}`)
    for (const { want: i, before } of inserts) {
      const w = want[i] as (typeof want)[number]
      lines.push(
        place(h, renderRule(w.section, w.rule), before === undefined ? undefined : have[before]?.handle),
      )
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}

function place(chain: Hook, rule: string, before: number | undefined): string {
  return before === undefined
    ? `add rule inet ${NFT_TABLE} ${chain} ${rule}`
    : `insert rule inet ${NFT_TABLE} ${chain} position ${before} ${rule}`
}

/**
 * The table after an edit (pure): spec's rules, with the handles of the
 * rules kept from table and of the new ones from `nft --echo --handle`.
 * Undefined when a handle cannot be told: the next batch lists first.
 */
export function afterEdit(spec: FirewallSpec, table: NftTable, echo: string): NftTable | undefined {
  const added = new Map<string, number>()
  for (const m of echo.matchAll(/^(?:add|insert) rule inet \S+ (\S+) .*comment "([^"]+)" # handle (\d+)$/gm))
    added.set(`${m[1]} ${m[2]}`, Number(m[3]))
  const rules = noRules()
  for (const h of HOOKS) {
    const kept = new Map(table.rules[h].map((r) => [r.tag, r.handle]))
    for (const { section, rule } of rulesOf(spec, h)) {
      const tag = ruleTag(section, rule)
      const handle = added.get(`${h} ${tag}`) ?? kept.get(tag)
      if (handle === undefined) return undefined
      rules[h].push({ tag, handle })
    }
  }
  return { hooked: true, rules }
}

const EMPTY: NftTable = { hooked: false, rules: noRules() }

export class NftablesFirewall implements FirewallBackend {
  readonly name = 'nftables'
  readonly variant = undefined
  /** our table as of the last listing or write; see the top of this file */
  private known?: NftTable

  constructor(private readonly netns?: string) {}

  private async list(): Promise<NftTable> {
    try {
      this.known = parseTable(
        await run('nft', ['-j', 'list', 'table', 'inet', NFT_TABLE], undefined, this.netns),
      )
    } catch (err) {
      if (!(err instanceof PlexusError && /No such file or directory/.test(err.message))) throw err
      this.known = EMPTY
    }
    return this.known
  }

  async read(): Promise<FirewallView> {
    return viewOf(await this.list())
  }

  async apply(spec: FirewallSpec): Promise<void> {
    const table = this.known ?? (await this.list())
    this.known = undefined
    if (table.hooked) {
      const script = renderEdit(spec, table)
      try {
        const echo = script ? await run('nft', ['--echo', '--handle', '-f', '-'], script, this.netns) : ''
        this.known = afterEdit(spec, table, echo)
        return
      } catch {
        // the table changed behind our back (a handle is gone): replace it whole
      }
    }
    await run('nft', ['-f', '-'], renderScript(spec), this.netns)
  }

  async remove(): Promise<boolean> {
    const present = (await this.list()) !== EMPTY
    this.known = undefined
    if (present)
      await run('nft', ['-f', '-'], `table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n`, this.netns)
    return present
  }
}
