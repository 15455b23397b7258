// What our drop rules stopped, from the kernel's own packet counters (read
// with every full pass: iptables-save -c, ebtables-save -c, nft counters),
// turned into increments of the agent's counters `datapath.<section>.dropped`
// (`datapath.spoof.dropped`, `datapath.isolation.dropped`). The first reading
// after a start counts everything the rules dropped since they were made: an
// agent restart leaves the rules, and their counts, in place.
import { type FirewallSpec, HOOKS, rulesOf, ruleTag } from './model.js'

export class DropCounts {
  /** the last count read per drop rule, by tag */
  private last = new Map<string, number>()

  /** packets dropped per section since the previous reading */
  observe(spec: FirewallSpec, packets: Record<string, number>): Map<string, number> {
    const added = new Map<string, number>()
    const next = new Map<string, number>()
    for (const hook of HOOKS) {
      for (const { section, rule } of rulesOf(spec, hook)) {
        const tag = ruleTag(section, rule)
        const n = packets[tag]
        if (rule.action.type !== 'drop' || n === undefined) continue
        const before = this.last.get(tag) ?? 0
        // a count that went down belongs to a rule made again since: it counted from 0
        const delta = n >= before ? n - before : n
        next.set(tag, n)
        if (delta > 0) added.set(section, (added.get(section) ?? 0) + delta)
      }
    }
    this.last = next
    return added
  }
}
