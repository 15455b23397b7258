// The iptables backend's layer 2 (hook `bridge`): ebtables, the xtables tool
// for bridged frames. Our chain PLEXUS-BRIDGE in the `nat` table is entered by
// one jump from PREROUTING, where every frame arriving on a bridge port passes
// before the bridge learns its MAC or delivers it (locally or to another
// port); libvirt's nwfilter anti-spoofing sits at the same place.
//
// A run of rules for one bridge port sits in a chain of its own, PLEXUS-P-<port>,
// entered by one `-i <port>` jump (portRuns in model.ts). With 334 ports of 8
// rules each, 2,680 rules in one flat chain held a container's DNS queries to its
// gateway at 24k a second; in port chains, 92k (107k with no rules).
//
// ebtables has no comment match, so a rule cannot carry its tag into the
// kernel. Each rule is rendered exactly as `ebtables-save` prints it, and a
// dumped line equal to the rendering of a wanted rule is that rule: the line
// covers everything the rule does, as the tag's hash does.
import { type FirewallSpec, portRuns, type Rule, rulesOf, ruleTag } from './model.js'
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

/** the chains that hold one bridge port's rules each (see the top of this file) */
const PORT_PREFIX = 'PLEXUS-P-'
const portChain = (iif: string) => `${PORT_PREFIX}${iif}`
const isPortChain = (chain: string) => chain.startsWith(PORT_PREFIX)

/** one of our rules as printed, the chain it is in, and the packets it matched */
interface Held {
  line: string
  chain: string
  packets: number
}

/** What `ebtables-save -c -t nat` shows of our chains and our jump. */
export interface EbDump {
  jumps: number
  /** our rules in the order a frame meets them: a port chain's in place of its jump */
  rules: Held[]
  /** each chain's rules as held: PLEXUS-BRIDGE's (the jumps to port chains among them), and every port chain's */
  chains: Map<string, string[]>
}

/**
 * The rules of our chains in the order a frame meets them, a port chain's in
 * place of the jump to it (only a jump as ebLayout writes it: on that port).
 */
function flatten(chains: Map<string, Held[]>): Held[] {
  return (chains.get(EB_CHAIN) ?? []).flatMap((r) => {
    const port = /^-i (\S+) -j (\S+)$/.exec(r.line)
    return (port && port[2] === portChain(port[1] as string) && chains.get(port[2])) || [r]
  })
}

export function parseEbSave(text: string): EbDump {
  let jumps = 0
  const held = new Map<string, Held[]>()
  for (const line of text.split('\n')) {
    const declared = /^:(\S+) /.exec(line)?.[1]
    if (declared !== undefined && (declared === EB_CHAIN || isPortChain(declared))) held.set(declared, [])
    const m = /^(?:\[(\d+):\d+\] )?-A (\S+) (.*)$/.exec(line)
    if (!m) continue
    const [, packets, chain = '', rest = ''] = m
    if (chain === PARENT && rest === JUMP) jumps++
    held.get(chain)?.push({ line: rest, chain, packets: Number(packets ?? 0) })
  }
  return {
    jumps,
    rules: flatten(held),
    chains: new Map([...held].map(([name, rules]) => [name, rules.map((r) => r.line)])),
  }
}

/** our chains as spec wants them (portRuns: a chain per port), and each wanted rule's place (pure) */
export function ebLayout(spec: FirewallSpec): {
  chains: Map<string, string[]>
  rules: { tag: string; line: string; chain: string }[]
} {
  const dispatch: string[] = []
  const chains = new Map<string, string[]>([[EB_CHAIN, dispatch]])
  const rules: { tag: string; line: string; chain: string }[] = []
  for (const run of portRuns(rulesOf(spec, 'bridge'))) {
    const chain = run.port === undefined ? EB_CHAIN : portChain(run.port)
    const lines = run.rules.map(({ rule }) => renderEbRule(rule))
    for (const [i, { section, rule }] of run.rules.entries())
      rules.push({ tag: ruleTag(section, rule), line: lines[i] as string, chain })
    if (run.port === undefined) dispatch.push(...lines)
    else {
      chains.set(chain, lines)
      dispatch.push(`-i ${run.port} -j ${chain}`)
    }
  }
  return { chains, rules }
}

/**
 * The dump as the view compares it, given the spec the caller expects (pure):
 * a line that renders a wanted rule, in the chain ebLayout puts it in, shows
 * as that rule's tag; any other line as itself (so a flat chain of an earlier
 * release differs, and is rewritten). Packets by tag.
 */
export function ebView(
  dump: EbDump,
  spec: FirewallSpec,
): { rules: string[]; packets: Record<string, number> } {
  const tags = new Map<string, string[]>()
  for (const w of ebLayout(spec).rules) {
    const at = `${w.chain} ${w.line}`
    tags.set(at, [...(tags.get(at) ?? []), w.tag])
  }
  const packets: Record<string, number> = {}
  const rules = dump.rules.map((r) => {
    const tag = tags.get(`${r.chain} ${r.line}`)?.shift() ?? r.line
    packets[tag] = r.packets
    return tag
  })
  return { rules, packets }
}

export const ebHooked = (d: EbDump) => d.chains.has(EB_CHAIN) && d.jumps === 1

/** whether anything of ours is there: a chain or the jump */
export const ebPresent = (d: EbDump) => d.chains.size > 0 || d.jumps > 0

/**
 * ebtables-restore --noflush input that makes our chains the spec's `bridge`
 * rules (ebLayout), given what they hold (pure): in each chain only the rules
 * that differ are deleted (by number, highest first) or inserted in place, as
 * for iptables; a new port chain is made before the jump to it, and an
 * unwanted one emptied and deleted after.
 */
export function renderEbRestore(spec: FirewallSpec, cur: EbDump): string {
  const want = ebLayout(spec).chains
  const out = ['*nat']
  for (const name of want.keys()) if (!cur.chains.has(name)) out.push(`:${name} RETURN`)
  // the port chains before PLEXUS-BRIDGE, whose new jumps need them
  const order = [...[...want.keys()].filter((n) => n !== EB_CHAIN), EB_CHAIN]
  for (const name of order) {
    const lines = (want.get(name) as string[]).map((l) => ({ tag: l, args: l }))
    out.push(...editChain(name, cur.chains.get(name) ?? [], lines))
  }
  if (cur.jumps === 0) out.push(`-I ${PARENT} 1 ${JUMP}`)
  for (let i = 1; i < cur.jumps; i++) out.push(`-D ${PARENT} ${JUMP}`)
  for (const name of cur.chains.keys()) if (!want.has(name)) out.push(`-F ${name}`, `-X ${name}`)
  out.push('COMMIT')
  return `${out.join('\n')}\n`
}

/** what a dump shows right after spec was restored (pure; counts are read only from real dumps) */
export function ebDumpOf(spec: FirewallSpec): EbDump {
  const { chains, rules } = ebLayout(spec)
  return { jumps: 1, rules: rules.map(({ line, chain }) => ({ line, chain, packets: 0 })), chains }
}

/** ebtables-restore --noflush input that removes our jump and chains: all emptied (so no jump is left) before any goes (pure) */
export function renderEbRemove(d: EbDump): string {
  const out = ['*nat']
  for (let i = 0; i < d.jumps; i++) out.push(`-D ${PARENT} ${JUMP}`)
  for (const name of d.chains.keys()) out.push(`-F ${name}`)
  for (const name of d.chains.keys()) out.push(`-X ${name}`)
  out.push('COMMIT')
  return `${out.join('\n')}\n`
}
