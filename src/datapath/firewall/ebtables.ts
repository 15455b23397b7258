// The iptables backend's layer 2 (hook `bridge`): ebtables, the xtables tool
// for bridged frames. Our chain PLEXUS-BRIDGE in the `nat` table is entered by
// one jump from PREROUTING, where every frame arriving on a bridge port passes
// before the bridge learns its MAC or delivers it (locally or to another
// port); libvirt's nwfilter anti-spoofing sits at the same place.
//
// ebtables has no comment match, so a rule cannot carry its tag into the
// kernel. Each rule is rendered exactly as `ebtables-save` prints it, and a
// dumped line equal to the rendering of a wanted rule is that rule: the line
// covers everything the rule does, as the tag's hash does.
import { type FirewallSpec, type Rule, rulesOf, ruleTag } from './model.js'
import { editChain } from './xtables.js'

export const EB_CHAIN = 'PLEXUS-BRIDGE'
const PARENT = 'PREROUTING'
const JUMP = `-j ${EB_CHAIN}`

const ETHER: Record<NonNullable<Rule['match']['etherType']>, string> = {
  ipv4: 'IPv4',
  ipv6: 'IPv6',
  arp: 'ARP',
}
const host = (a: string) => a.replace(/\/(32|128)$/, '')

/** ebtables has no match for a neighbour advertisement's target (nor any raw payload match) */
export const ebtablesCan = (r: Rule) => r.match.notNaTarget === undefined

/** a rule as `ebtables-save` prints it after `-A PLEXUS-BRIDGE ` (pure) */
export function renderEbRule(r: Rule): string {
  const m = r.match
  const a: string[] = []
  if (m.etherType) a.push('-p', ETHER[m.etherType])
  if (m.notSrcMac) a.push('-s', '!', m.notSrcMac)
  if (m.iif) a.push('-i', m.iif)
  if (m.src) a.push('--ip-src', host(m.src))
  if (m.notSrc) a.push('--ip-src', '!', host(m.notSrc))
  if (m.src6) a.push('--ip6-src', host(m.src6))
  if (m.notArpSrc) a.push('--arp-ip-src', '!', m.notArpSrc)
  if (m.notArpSrcMac) a.push('--arp-mac-src', '!', m.notArpSrcMac)
  a.push('-j', r.action.type.toUpperCase())
  return a.join(' ')
}

/** What `ebtables-save -c -t nat` shows of our chain and its jumps (pure parse). */
export interface EbDump {
  chain: boolean
  jumps: number
  /** our chain's rules as printed, in order */
  lines: string[]
  /** packets each of those rules matched */
  packets: number[]
}

export const EMPTY_EB: EbDump = { chain: false, jumps: 0, lines: [], packets: [] }

export function parseEbSave(text: string): EbDump {
  const dump: EbDump = { chain: false, jumps: 0, lines: [], packets: [] }
  for (const line of text.split('\n')) {
    if (line.startsWith(`:${EB_CHAIN} `)) dump.chain = true
    const m = /^(?:\[(\d+):\d+\] )?-A (\S+) (.*)$/.exec(line)
    if (!m) continue
    const [, packets, chain, rest] = m
    if (chain === EB_CHAIN) {
      dump.lines.push(rest as string)
      dump.packets.push(Number(packets ?? 0))
    } else if (chain === PARENT && rest === JUMP) dump.jumps++
  }
  return dump
}

const wanted = (spec: FirewallSpec) =>
  rulesOf(spec, 'bridge').map(({ section, rule }) => ({
    tag: ruleTag(section, rule),
    line: renderEbRule(rule),
  }))

/**
 * The dump as the view compares it, given the spec the caller expects (pure):
 * a line that renders a wanted rule shows as that rule's tag, any other line
 * as itself. Packets by tag.
 */
export function ebView(
  dump: EbDump,
  spec: FirewallSpec,
): { rules: string[]; packets: Record<string, number> } {
  const tags = new Map<string, string[]>()
  for (const w of wanted(spec)) tags.set(w.line, [...(tags.get(w.line) ?? []), w.tag])
  const packets: Record<string, number> = {}
  const rules = dump.lines.map((line, i) => {
    const tag = tags.get(line)?.shift() ?? line
    packets[tag] = dump.packets[i] ?? 0
    return tag
  })
  return { rules, packets }
}

export const ebHooked = (d: EbDump) => d.chain && d.jumps === 1

/**
 * ebtables-restore --noflush input that makes our chain the spec's `bridge`
 * rules, given what it holds (pure): only the rules that differ are deleted
 * (by number, highest first) or inserted in place, as for iptables.
 */
export function renderEbRestore(spec: FirewallSpec, cur: EbDump): string {
  const want = wanted(spec).map((w) => ({ tag: w.line, args: w.line }))
  const out = ['*nat']
  if (!cur.chain) out.push(`:${EB_CHAIN} RETURN`)
  out.push(...editChain(EB_CHAIN, cur.chain ? cur.lines : [], want))
  if (cur.jumps === 0) out.push(`-I ${PARENT} 1 ${JUMP}`)
  for (let i = 1; i < cur.jumps; i++) out.push(`-D ${PARENT} ${JUMP}`)
  out.push('COMMIT')
  return `${out.join('\n')}\n`
}

/** what a dump shows right after spec was restored (pure; counts are read only from real dumps) */
export function ebDumpOf(spec: FirewallSpec): EbDump {
  const lines = wanted(spec).map((w) => w.line)
  return { chain: true, jumps: 1, lines, packets: lines.map(() => 0) }
}

/** ebtables-restore --noflush input that removes our jump and chain (pure) */
export function renderEbRemove(d: EbDump): string {
  const out = ['*nat']
  for (let i = 0; i < d.jumps; i++) out.push(`-D ${PARENT} ${JUMP}`)
  if (d.chain) out.push(`-F ${EB_CHAIN}`, `-X ${EB_CHAIN}`)
  out.push('COMMIT')
  return `${out.join('\n')}\n`
}
