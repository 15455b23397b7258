// `plexusd --cleanup`: removes every device, route and firewall rule Plexus
// made, whatever the config says now (it may have changed since). Entries
// on our devices (neighbours, FDB, addresses) go with the devices. The
// forwarding sysctl is left as it is: other software may rely on it.
import { errorMessage } from '../lib/errors.js'
import { stopDevices } from './backend/wireguard/device.js'
import { allFirewalls, type FirewallBackend } from './firewall/index.js'
import { SHIM_PREFIX } from './macvlan.js'
import { OWNED_LINK, WIREGUARD_NAME } from './model.js'
import { Netlink, RTPROT_PLEXUS } from './netlink.js'

export interface CleanupReport {
  routes: string[]
  links: string[]
  /** pids of the WireGuard device processes stopped */
  processes: number[]
  firewall: string[]
  errors: string[]
}

export async function cleanup(nl: Netlink, firewalls: FirewallBackend[]): Promise<CleanupReport> {
  const report: CleanupReport = { routes: [], links: [], processes: [], firewall: [], errors: [] }
  for (const r of (await nl.routes()).filter((x) => x.protocol === RTPROT_PLEXUS)) {
    try {
      await nl.deleteRoute({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) })
      report.routes.push(r.dst)
    } catch (err) {
      report.errors.push(`route ${r.dst}: ${errorMessage(err)}`)
    }
  }
  // wireguard-go: the agent leaves it running across restarts; stopped first, it takes its device with it
  const wg = await stopDevices(WIREGUARD_NAME)
  report.processes.push(...wg.stopped)
  report.errors.push(...wg.errors)
  for (const l of (await nl.links()).filter(
    (x) => OWNED_LINK.test(x.name) || x.name.startsWith(SHIM_PREFIX),
  )) {
    try {
      await nl.deleteLink(l.name)
      report.links.push(l.name)
    } catch (err) {
      report.errors.push(`link ${l.name}: ${errorMessage(err)}`)
    }
  }
  for (const fw of firewalls) {
    const label = fw.variant ? `${fw.name} (${fw.variant})` : fw.name
    try {
      if (await fw.remove()) report.firewall.push(label)
    } catch (err) {
      // a flavour whose tools or kernel support are missing holds nothing of ours
      if (
        !/not found|ENOENT|Failed to initialize|can't initialize|Protocol not supported/i.test(
          errorMessage(err),
        )
      ) {
        report.errors.push(`${label}: ${errorMessage(err)}`)
      }
    }
  }
  return report
}

/** cleanup of this host's own namespace, as `plexusd --cleanup` runs it */
export async function cleanupHost(): Promise<CleanupReport> {
  const nl = Netlink.open()
  try {
    return await cleanup(nl, allFirewalls())
  } finally {
    nl.close()
  }
}

export function formatCleanup(r: CleanupReport): string {
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none')
  const lines = [
    `removed links: ${list(r.links)}`,
    `removed routes: ${list(r.routes)}`,
    `stopped processes: ${list(r.processes.map((p) => `wireguard-go (pid ${p})`))}`,
    `removed firewall rules: ${list(r.firewall)}`,
    ...r.errors.map((e) => `error: ${e}`),
  ]
  return `${lines.join('\n')}\n`
}
