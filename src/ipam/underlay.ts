import { readFile } from 'node:fs/promises'
import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os'
import { PlexusError } from '../lib/errors.js'

// Which underlay address this host publishes in its lease and which MTU the
// overlay is derived from. Read from procfs/sysfs and os.networkInterfaces()
// (no process spawned), in the network namespace the agent runs in.

export interface Underlay {
  address: string
  ifname: string
  mtu: number
}

/** The interface of the IPv4 default route in /proc/net/route text (lowest metric wins). */
export function defaultRouteInterface(procNetRoute: string): string | undefined {
  let best: { ifname: string; metric: number } | undefined
  for (const line of procNetRoute.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
    if (f.length < 8 || f[1] !== '00000000' || f[7] !== '00000000') continue
    const metric = Number(f[6])
    if (!best || metric < best.metric) best = { ifname: f[0] as string, metric }
  }
  return best?.ifname
}

/** Picks the underlay from the interface table: the named interface, the one holding `address`, or the default-route one. */
export function pickUnderlay(
  ifaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  want: { address?: string; ifname?: string },
  defaultIf: string | undefined,
): { address: string; ifname: string } {
  const v4 = (name: string) => (ifaces[name] ?? []).filter((a) => a.family === 'IPv4' && !a.internal)
  if (want.address) {
    const owner = Object.keys(ifaces).find((n) => v4(n).some((a) => a.address === want.address))
    const ifname = want.ifname ?? owner
    if (!ifname)
      throw new PlexusError(
        'PLX_IPAM_UNDERLAY',
        `underlay address ${want.address} is not on any interface of this host`,
      )
    return { address: want.address, ifname }
  }
  const ifname = want.ifname ?? defaultIf
  if (!ifname)
    throw new PlexusError(
      'PLX_IPAM_UNDERLAY',
      'no default route: set underlayAddress or underlayInterface in the agent config',
    )
  const addr = v4(ifname)[0]
  if (!addr) throw new PlexusError('PLX_IPAM_UNDERLAY', `underlay interface ${ifname} has no IPv4 address`)
  return { address: addr.address, ifname }
}

export async function detectUnderlay(want: { address?: string; ifname?: string }): Promise<Underlay> {
  const routes = await readFile('/proc/net/route', 'utf8').catch(() => '')
  const { address, ifname } = pickUnderlay(networkInterfaces(), want, defaultRouteInterface(routes))
  if (!/^[^/\s]{1,15}$/.test(ifname) || ifname.startsWith('.'))
    throw new PlexusError('PLX_IPAM_UNDERLAY', `"${ifname}" is not an interface name`)
  const mtuText = await readFile(`/sys/class/net/${ifname}/mtu`, 'utf8').catch(() => '')
  const mtu = Number(mtuText.trim())
  if (!Number.isInteger(mtu) || mtu < 576)
    throw new PlexusError('PLX_IPAM_UNDERLAY', `cannot read the MTU of underlay interface ${ifname}`)
  return { address, ifname, mtu }
}
