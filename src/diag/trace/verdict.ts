// Pure: the forward-hook verdict of the host's firewall for one flow, from
// the same dumps doctor reads. Plexus' own chains accept the cluster's
// traffic; what can stop it is a foreign rule ahead of them or, with
// nftables, a foreign base chain whose policy drops (every base chain on a
// hook sees the packet) or a rule of such a chain that drops this flow.
import { ahead, foreignNftChains, nftChainDrops, parseIptablesFilter, xtRuleDrops } from '../firewall-view.js'
import type { Flow, Hop } from './model.js'

export function forwardVerdict(
  host: string,
  flow: Flow,
  dumps: { iptablesSave?: string; nftRuleset?: unknown },
): Hop {
  const base = { host, component: 'firewall', record: 'config/network (section cluster)' }
  const match = {
    proto: flow.proto,
    src: flow.src,
    dst: flow.dst,
    ...(flow.port ? { dport: flow.port } : {}),
  }
  const fwd = dumps.iptablesSave ? parseIptablesFilter(dumps.iptablesSave).get('FORWARD') : undefined
  const ours = !!fwd && fwd.rules.some((r) => r.endsWith('-j PLEXUS-FORWARD'))
  if (fwd) {
    const { rules, jump } = ahead(fwd, 'PLEXUS-FORWARD')
    const drop = rules.find((r) => xtRuleDrops(r, match))
    if (drop)
      return {
        ...base,
        action: 'dropped',
        object: `iptables -A FORWARD ${drop}`,
        cause: `a foreign rule ahead of the jump to PLEXUS-FORWARD drops ${flow.src} → ${flow.dst}`,
        fix: `delete it (iptables -D FORWARD ${drop}) or move it after the jump to PLEXUS-FORWARD`,
      }
    if (!jump && ours === false && fwd.policy === 'DROP' && !hasNftPlexus(dumps.nftRuleset))
      return {
        ...base,
        action: 'dropped',
        object: 'iptables FORWARD policy DROP, no jump to PLEXUS-FORWARD',
        cause: "the FORWARD policy drops and Plexus' chain is not entered",
        fix: 'the datapath restores its jump within one pass; if it stays missing see `plexctl routes` (failed firewall batch)',
      }
  }
  const skipXtables = dumps.iptablesSave !== undefined
  const blocking = foreignNftChains(dumps.nftRuleset, { skipXtables }).find(
    (c) => c.hook === 'forward' && c.policy === 'drop',
  )
  if (blocking)
    return {
      ...base,
      action: 'dropped',
      object: `nft chain ${blocking.family} ${blocking.table} ${blocking.name} (hook forward, policy drop)`,
      cause:
        "a foreign nftables base chain on the forward hook drops by policy; Plexus' accept does not save the packet from it",
      fix: `nft insert rule ${blocking.family} ${blocking.table} ${blocking.name} ip saddr ${flow.src} accept (or accept the cluster network there)`,
    }
  for (const c of foreignNftChains(dumps.nftRuleset, { skipXtables }).filter((x) => x.hook === 'forward')) {
    const rule = nftChainDrops(dumps.nftRuleset, c, match)
    if (rule)
      return {
        ...base,
        action: 'dropped',
        object: `nft rule ${rule}`,
        cause: `a foreign nftables rule on the forward hook drops ${flow.src} → ${flow.dst}; Plexus' accept does not save the packet from another table's chain`,
        fix: `delete it (nft delete rule ${rule.split(':')[0]}) or accept the cluster network ahead of it`,
      }
  }
  return {
    ...base,
    action: 'forwarded',
    object: ours
      ? 'iptables FORWARD -j PLEXUS-FORWARD (cluster accept)'
      : hasNftPlexus(dumps.nftRuleset)
        ? 'nft inet plexus forward (cluster accept)'
        : 'no filtering rule on forward',
  }
}

function hasNftPlexus(ruleset: unknown): boolean {
  const items = (ruleset as { nftables?: unknown[] } | undefined)?.nftables
  return (
    Array.isArray(items) && items.some((i) => (i as { table?: { name?: string } }).table?.name === 'plexus')
  )
}
