// The firewall behind one interface, picked once at start-up (flannel's
// trafficmngr/{iptables,nftables}): config `iptables` | `nftables` | `auto`.
import { PlexusError } from '../../lib/errors.js'
import type { FirewallBackend } from './backend.js'
import { run } from './exec.js'
import { detectVariant, IptablesFirewall } from './iptables.js'
import { NftablesFirewall } from './nftables.js'

export type { FirewallBackend } from './backend.js'

export const FIREWALL_KINDS = ['auto', 'iptables', 'nftables'] as const
export type FirewallKind = (typeof FIREWALL_KINDS)[number]

async function has(cmd: string, args: string[], netns?: string): Promise<boolean> {
  try {
    await run(cmd, args, undefined, netns)
    return true
  } catch {
    return false
  }
}

/**
 * auto: iptables when its tools work (what most hosts and flannel use, and
 * our jump sits in the host's own FORWARD chain, ahead of a DROP policy),
 * else nftables.
 */
export async function createFirewall(kind: FirewallKind, netns?: string): Promise<FirewallBackend> {
  if (kind === 'nftables' || (kind === 'auto' && !(await has('iptables-save', ['-t', 'filter'], netns)))) {
    if (!(await has('nft', ['--version'], netns))) {
      throw new PlexusError('PLX_FIREWALL_UNAVAILABLE', 'nftables firewall selected but `nft` is not usable')
    }
    return new NftablesFirewall(netns)
  }
  if (!(await has('iptables-save', ['-t', 'filter'], netns))) {
    throw new PlexusError(
      'PLX_FIREWALL_UNAVAILABLE',
      'iptables firewall selected but iptables-save is not usable',
    )
  }
  return new IptablesFirewall(await detectVariant(netns), netns)
}

/** every backend and flavour, for `plexusd --cleanup` (the config may have changed since the rules were made) */
export function allFirewalls(netns?: string): FirewallBackend[] {
  return [
    new IptablesFirewall('nf_tables', netns),
    new IptablesFirewall('legacy', netns),
    new NftablesFirewall(netns),
  ]
}
