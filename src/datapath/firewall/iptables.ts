// iptables backend: our own chains PLEXUS-<HOOK> in the filter and nat
// tables, each entered by one jump from the built-in chain. Written with one
// `iptables-restore --noflush` per batch (nothing but our chains and jumps is
// touched), read with iptables-save. A batch edits our chains from what they
// hold to what they should hold, deleting and inserting only the rules that
// differ: with the nf_tables flavour every deleted or flushed rule makes the
// commit wait for an RCU grace period (flushing both tables to add one port
// took 25-30 ms here; inserting its rules takes under 1 ms).
// Layer-2 rules (hook `bridge`) go to ebtables (ebtables.ts), edited the same way;
// the few ebtables cannot express (a neighbour advertisement's target) go to
// nftables' bridge family, table `bridge plexus`, which exists only while
// such rules do. Both are the kernel's nf_tables bridge family (ebtables-nft).

import type { FirewallBackend } from './backend.js'
import {
  type EbDump,
  ebDumpOf,
  ebHooked,
  ebPresent,
  ebtablesCan,
  ebView,
  parseEbSave,
  renderEbRemove,
  renderEbRestore,
} from './ebtables.js'
import { generationIn, run, type Tool, WarmTools } from './exec.js'
import {
  type FirewallSpec,
  type FirewallView,
  HOOKS,
  type Hook,
  type Match,
  type Rule,
  rulesOf,
  ruleTag,
  withRules,
} from './model.js'
import { NftablesFirewall } from './nftables.js'
import { editChain, edits } from './xtables.js'

export type IptablesVariant = 'nf_tables' | 'legacy'

/** the hooks iptables itself programs; `bridge` is ebtables' */
type IptHook = Exclude<Hook, 'bridge'>
const IPT_HOOKS = HOOKS.filter((h): h is IptHook => h !== 'bridge')

const TABLE: Record<IptHook, 'filter' | 'nat'> = {
  forward: 'filter',
  input: 'filter',
  prerouting: 'nat',
  output: 'nat',
  postrouting: 'nat',
}
const PARENT: Record<IptHook, string> = {
  forward: 'FORWARD',
  input: 'INPUT',
  prerouting: 'PREROUTING',
  output: 'OUTPUT',
  postrouting: 'POSTROUTING',
}
const JUMP_TAG = 'plexus-hook'

export function chainOf(hook: IptHook): string {
  return `PLEXUS-${PARENT[hook]}`
}

function jumpArgs(hook: IptHook): string {
  return `-m comment --comment ${JUMP_TAG} -j ${chainOf(hook)}`
}

function matchArgs(m: Match): string[] {
  const a: string[] = []
  if (m.src) a.push('-s', m.src)
  if (m.notSrc) a.push('!', '-s', m.notSrc)
  if (m.dst) a.push('-d', m.dst)
  if (m.notDst) a.push('!', '-d', m.notDst)
  if (m.iif) a.push('-i', m.iif)
  if (m.oif) a.push('-o', m.oif)
  if (m.proto) a.push('-p', m.proto)
  if (m.dstLocal) a.push('-m', 'addrtype', '--dst-type', 'LOCAL')
  if (m.dport !== undefined && m.proto) a.push('-m', m.proto, '--dport', String(m.dport))
  if (m.ctState?.length) a.push('-m', 'conntrack', '--ctstate', m.ctState.join(',').toUpperCase())
  if (m.ctDnat) a.push('-m', 'conntrack', '--ctstate', 'DNAT')
  return a
}

function actionArgs(r: Rule): string[] {
  const act = r.action
  switch (act.type) {
    case 'accept':
      return ['-j', 'ACCEPT']
    case 'return':
      return ['-j', 'RETURN']
    case 'drop':
      return ['-j', 'DROP']
    case 'masquerade':
      return ['-j', 'MASQUERADE']
    case 'snat':
      return ['-j', 'SNAT', '--to-source', act.to]
    case 'dnat':
      return ['-j', 'DNAT', '--to-destination', act.port === undefined ? act.to : `${act.to}:${act.port}`]
  }
}

/** a rule as iptables-restore takes it after `-A <chain>` or `-I <chain> <n>` */
function ruleArgs(section: string, r: Rule): string {
  return [
    ...matchArgs(r.match),
    '-m',
    'comment',
    '--comment',
    `"${ruleTag(section, r)}"`,
    ...actionArgs(r),
  ].join(' ')
}

/** one `-A` line of iptables-restore input */
export function renderRule(section: string, hook: IptHook, r: Rule): string {
  return `-A ${chainOf(hook)} ${ruleArgs(section, r)}`
}

/** What iptables-save shows of our chains and jumps (pure parse). */
export interface IptablesDump {
  chains: Set<string>
  /** our rule tags (or the raw line for a rule that is not ours) per our chain */
  rules: Map<string, string[]>
  /** number of jumps into each of our chains from its built-in parent */
  jumps: Map<string, number>
  /** packets each of our rules matched (iptables-save -c), by tag */
  packets: Map<string, number>
}

const COMMENT = /--comment "?([^"\s]+)"?/

export function parseSave(text: string): IptablesDump {
  const dump: IptablesDump = { chains: new Set(), rules: new Map(), jumps: new Map(), packets: new Map() }
  const ours = new Map(IPT_HOOKS.map((h) => [chainOf(h), h]))
  const parents = new Map(IPT_HOOKS.map((h) => [PARENT[h], chainOf(h)]))
  for (const full of text.split('\n')) {
    const decl = /^:(\S+)/.exec(full)
    if (decl?.[1] && ours.has(decl[1])) dump.chains.add(decl[1])
    // with -c every rule starts with [packets:bytes]
    const counted = /^\[(\d+):\d+\] (.*)$/.exec(full)
    const line = counted?.[2] ?? full
    const m = /^-A (\S+) (.*)$/.exec(line)
    if (!m?.[1] || m[2] === undefined) continue
    const [, chain, rest] = m
    if (ours.has(chain)) {
      const list = dump.rules.get(chain) ?? []
      const tag = COMMENT.exec(rest)?.[1] ?? line
      list.push(tag)
      dump.rules.set(chain, list)
      if (counted) dump.packets.set(tag, Number(counted[1]))
    } else if (parents.get(chain) && rest.endsWith(`-j ${parents.get(chain)}`)) {
      const target = parents.get(chain) as string
      dump.jumps.set(target, (dump.jumps.get(target) ?? 0) + 1)
    }
  }
  return dump
}

/** the view of our iptables chains (the `bridge` hook, ebtables', left empty) */
export function viewOf(dump: IptablesDump): FirewallView {
  const hooked = IPT_HOOKS.every((h) => dump.chains.has(chainOf(h)) && dump.jumps.get(chainOf(h)) === 1)
  const rules = Object.fromEntries([
    ...IPT_HOOKS.map((h) => [h, dump.rules.get(chainOf(h)) ?? []]),
    ['bridge', []],
  ]) as Record<Hook, string[]>
  return { hooked, rules, packets: Object.fromEntries(dump.packets) }
}

/**
 * iptables-restore --noflush input that makes our chains exactly spec, given
 * what they hold now (pure). A chain `current` does not know is declared,
 * which creates it or flushes it, and filled whole.
 */
export function renderRestore(spec: FirewallSpec, current: IptablesDump): string {
  const out: string[] = []
  for (const table of ['filter', 'nat'] as const) {
    const hooks = IPT_HOOKS.filter((h) => TABLE[h] === table)
    out.push(`*${table}`)
    for (const h of hooks) if (!current.chains.has(chainOf(h))) out.push(`:${chainOf(h)} - [0:0]`)
    for (const h of hooks) {
      const chain = chainOf(h)
      const want = rulesOf(spec, h).map(({ section, rule }) => ({
        tag: ruleTag(section, rule),
        args: ruleArgs(section, rule),
      }))
      out.push(...editChain(chain, current.chains.has(chain) ? (current.rules.get(chain) ?? []) : [], want))
    }
    for (const h of hooks) {
      const n = current.jumps.get(chainOf(h)) ?? 0
      if (n === 0) out.push(`-I ${PARENT[h]} 1 ${jumpArgs(h)}`)
      for (let i = 1; i < n; i++) out.push(`-D ${PARENT[h]} ${jumpArgs(h)}`)
    }
    out.push('COMMIT')
  }
  return `${out.join('\n')}\n`
}

/** what a dump shows right after spec was restored (pure) */
export function dumpOf(spec: FirewallSpec): IptablesDump {
  const chains = IPT_HOOKS.map(chainOf)
  return {
    chains: new Set(chains),
    rules: new Map(
      IPT_HOOKS.map((h) => [chainOf(h), rulesOf(spec, h).map((x) => ruleTag(x.section, x.rule))]),
    ),
    jumps: new Map(chains.map((c) => [c, 1])),
    packets: new Map(),
  }
}

/** iptables-restore --noflush input that removes our jumps and chains (pure). */
export function renderRemove(dump: IptablesDump): string {
  const out: string[] = []
  for (const table of ['filter', 'nat'] as const) {
    const hooks = IPT_HOOKS.filter((h) => TABLE[h] === table)
    out.push(`*${table}`)
    for (const h of hooks)
      for (let i = 0; i < (dump.jumps.get(chainOf(h)) ?? 0); i++) out.push(`-D ${PARENT[h]} ${jumpArgs(h)}`)
    for (const h of hooks) if (dump.chains.has(chainOf(h))) out.push(`-F ${chainOf(h)}`, `-X ${chainOf(h)}`)
    out.push('COMMIT')
  }
  return `${out.join('\n')}\n`
}

/** the part of spec ebtables and iptables write, and the part nftables' bridge table holds (pure) */
export function splitSpec(spec: FirewallSpec): { xt: FirewallSpec; nft: FirewallSpec } {
  return {
    xt: withRules(spec, (r) => r.hook !== 'bridge' || ebtablesCan(r)),
    nft: withRules(spec, (r) => r.hook === 'bridge' && !ebtablesCan(r)),
  }
}

/**
 * The `bridge` hook's rules in the order the spec wants them, from where
 * they live (ebtables' chain, the nft table; each in its own order) (pure):
 * while the next wanted tag heads one of the two, it is taken from there;
 * what remains follows, so any difference shows as drift. Where a rule
 * lives does not change what it does: all are drops or returns to the
 * bridge, and a frame meets both chains (ebtables' at the bridge's nat
 * priority, -300, before the nft table's filter, -200).
 */
export function mergeBridge(want: string[], eb: string[], nft: string[]): string[] {
  const from = [[...eb], [...nft]]
  const out: string[] = []
  for (const tag of want) {
    const list = from.find((l) => l[0] === tag)
    if (!list) break
    out.push(list.shift() as string)
  }
  return [...out, ...from.flat()]
}

function tool(variant: IptablesVariant, what: 'save' | 'restore'): string {
  return `iptables-${variant === 'legacy' ? 'legacy' : 'nft'}-${what}`
}

/** counts rules in both iptables flavours; the one in use has more (kube-proxy's heuristic), ties go to nf_tables */
export async function detectVariant(netns?: string): Promise<IptablesVariant> {
  const count = async (v: IptablesVariant) => {
    try {
      const text = await run(tool(v, 'save'), [], undefined, netns)
      return text.split('\n').filter((l) => l.startsWith('-A ')).length
    } catch {
      return -1
    }
  }
  const [nft, legacy] = await Promise.all([count('nf_tables'), count('legacy')])
  return legacy > nft ? 'legacy' : 'nf_tables'
}

/**
 * ebtables writes the kernel's bridge family whatever the iptables flavour:
 * the nf_tables tool, which ships with iptables 1.8 (Debian's iptables
 * package), where the legacy ebtables is a separate package most hosts lack.
 */
const EBTABLES_SAVE = 'ebtables-nft-save'
const EBTABLES_RESTORE = 'ebtables-nft-restore'

export class IptablesFirewall implements FirewallBackend {
  readonly name = 'iptables'
  /**
   * Our chains as of the last dump or successful restore. apply() edits from
   * it instead of dumping both tables again, so a published port is one
   * process, not three. A change by someone else in between is drift that
   * the next full pass reads (refreshing this) and repairs; an edit that no
   * longer applies makes apply() dump and try once more.
   */
  private known?: { ipt: IptablesDump; eb: EbDump }
  /** the `bridge plexus` table for the rules ebtables cannot express */
  private readonly nd: NftablesFirewall
  /** whether that table may exist: it is removed when no rule needs it, but not listed before every apply */
  private ndMayExist = true
  /** the restore processes of the next batch, started after the last (prepare()) */
  private readonly tools: WarmTools

  constructor(
    readonly variant: IptablesVariant,
    private readonly netns?: string,
  ) {
    this.nd = new NftablesFirewall(netns, ['bridge'])
    this.tools = new WarmTools(netns)
  }

  private async dump(): Promise<{ ipt: IptablesDump; eb: EbDump }> {
    const [filter, nat, eb] = await Promise.all([
      run(tool(this.variant, 'save'), ['-c', '-t', 'filter'], undefined, this.netns),
      run(tool(this.variant, 'save'), ['-c', '-t', 'nat'], undefined, this.netns),
      run(EBTABLES_SAVE, ['-c', '-t', 'nat'], undefined, this.netns),
    ])
    this.known = { ipt: parseSave(`${filter}\n${nat}`), eb: parseEbSave(eb) }
    return this.known
  }

  /**
   * iptables' edit and ebtables' run side by side, each only when it changes
   * something (an ADD without a published port edits no iptables chain).
   * They write different tables and no rule of one refers to the other, and
   * a batch that needs both (an ADD with a published port: its DNAT and its
   * veth's anti-spoofing rules) is what a CNI ADD waits for: one after the
   * other they cost it two tool runs. Both settle before a failure is
   * thrown, so the retry's dump sees everything they did.
   */
  private async restore(spec: FirewallSpec, from: { ipt: IptablesDump; eb: EbDump }): Promise<void> {
    const [ipt, eb] = this.restoreTools()
    const batches: [Tool, string][] = [
      [ipt, renderRestore(spec, from.ipt)],
      [eb, renderEbRestore(spec, from.eb)],
    ]
    const done = await Promise.allSettled(
      batches.filter(([, input]) => edits(input)).map(([t, input]) => this.tools.run(...t, input)),
    )
    const failed = done.find((d) => d.status === 'rejected')
    if (failed) throw failed.reason
  }

  private restoreTools(): [Tool, Tool] {
    return [
      [tool(this.variant, 'restore'), ['--noflush', '--wait']],
      [EBTABLES_RESTORE, ['--noflush']],
    ]
  }

  prepare(): void {
    this.tools.prepare(this.restoreTools())
  }

  release(): void {
    this.tools.release()
  }

  /** ebtables-nft and the `bridge plexus` table are nf_tables always; iptables only in that flavour */
  generation(): Promise<number | undefined> {
    return this.variant === 'nf_tables' ? generationIn(this.netns) : Promise.resolve(undefined)
  }

  /** want: the spec the caller expects, which names the ebtables rules (they cannot carry a comment) */
  async read(want: FirewallSpec = { sections: [] }): Promise<FirewallView> {
    const { xt, nft } = splitSpec(want)
    const [{ ipt, eb }, nd] = await Promise.all([this.dump(), this.nd.read()])
    this.ndMayExist = nd.hooked || nd.rules.bridge.length > 0
    const view = viewOf(ipt)
    const bridge = ebView(eb, xt)
    const ndWanted = rulesOf(nft, 'bridge').length > 0
    return {
      hooked: view.hooked && ebHooked(eb) && (nd.hooked || !(ndWanted || this.ndMayExist)),
      rules: {
        ...view.rules,
        bridge: mergeBridge(
          rulesOf(want, 'bridge').map((x) => ruleTag(x.section, x.rule)),
          bridge.rules,
          nd.rules.bridge,
        ),
      },
      packets: { ...view.packets, ...bridge.packets, ...nd.packets },
    }
  }

  async apply(spec: FirewallSpec): Promise<void> {
    const { xt, nft } = splitSpec(spec)
    const known = this.known
    this.known = undefined
    try {
      await this.restore(xt, known ?? (await this.dump()))
    } catch (err) {
      if (!known) throw err
      await this.restore(xt, await this.dump())
    }
    this.known = { ipt: dumpOf(xt), eb: ebDumpOf(xt) }
    if (rulesOf(nft, 'bridge').length > 0) {
      this.ndMayExist = true
      await this.nd.apply(nft)
    } else if (this.ndMayExist) {
      await this.nd.remove()
      this.ndMayExist = false
    }
  }

  async remove(): Promise<boolean> {
    const { ipt, eb } = await this.dump()
    this.known = undefined
    const ours = ipt.chains.size > 0 || ipt.jumps.size > 0
    if (ours) await run(tool(this.variant, 'restore'), ['--noflush', '--wait'], renderRemove(ipt), this.netns)
    if (ebPresent(eb)) await run(EBTABLES_RESTORE, ['--noflush'], renderEbRemove(eb), this.netns)
    const nd = await this.nd.remove()
    this.ndMayExist = false
    return ours || ebPresent(eb) || nd
  }
}
