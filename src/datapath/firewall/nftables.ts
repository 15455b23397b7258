// nftables backend: one table `inet plexus`, replaced whole in a single
// `nft -f` transaction (create-if-missing, delete, define), so a reader never
// sees a half-written table and nothing outside our table is touched.
import { PlexusError } from '../../lib/errors.js'
import { run } from './exec.js'
import type { FirewallBackend } from './index.js'
import {
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

/** our table as the view compares it (pure parse of `nft -j list table`) */
export function parseListing(json: string): FirewallView {
  const doc = JSON.parse(json) as NftJson
  const chains = new Set<string>()
  const rules = Object.fromEntries(HOOKS.map((h) => [h, [] as string[]])) as Record<Hook, string[]>
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
      rules[r.chain as Hook].push(r.comment ?? `handle ${r.handle}`)
  }
  return { hooked: HOOKS.every((h) => chains.has(h)), rules }
}

const EMPTY: FirewallView = {
  hooked: false,
  rules: Object.fromEntries(HOOKS.map((h) => [h, []])) as unknown as Record<Hook, string[]>,
}

export class NftablesFirewall implements FirewallBackend {
  readonly name = 'nftables'
  readonly variant = undefined
  constructor(private readonly netns?: string) {}

  async read(): Promise<FirewallView> {
    try {
      return parseListing(await run('nft', ['-j', 'list', 'table', 'inet', NFT_TABLE], undefined, this.netns))
    } catch (err) {
      if (err instanceof PlexusError && /No such file or directory/.test(err.message)) return EMPTY
      throw err
    }
  }

  async apply(spec: FirewallSpec): Promise<void> {
    await run('nft', ['-f', '-'], renderScript(spec), this.netns)
  }

  async remove(): Promise<boolean> {
    const present = (await this.read()) !== EMPTY
    if (present)
      await run('nft', ['-f', '-'], `table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n`, this.netns)
    return present
  }
}
