// The one effectful reader behind plexctl doctor: reads sysctls, device MTUs,
// the firewall dumps and asks the DNS server once, in the agent's own network
// namespace or (tests) in the one at `netns`. Read-only: it changes nothing.
import { readFileSync } from 'node:fs'
import dnsPacket from 'dns-packet'
import { run } from '../../datapath/firewall/exec.js'
import { Netlink } from '../../datapath/netlink.js'
import { withNetns } from '../../datapath/netns.js'
import { errorMessage } from '../../lib/errors.js'
import { exchangeUdp } from '../netns-udp.js'
import type { DoctorFacts } from './checks.js'

export interface FactSources {
  /** namespace to read (a /run/netns path); absent: the agent's own */
  netns?: string
  overlay?: DoctorFacts['overlay']
  lease: DoctorFacts['lease']
  /** where DNS should answer (the bridge gateway); absent: DNS is not checked */
  dnsAddress?: string
}

const DNS_TIMEOUT_MS = 1000

function inNs<T>(netns: string | undefined, fn: () => T): T {
  return netns === undefined ? fn() : withNetns(netns, fn)
}

function readSysctl(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim())
  } catch {
    return undefined
  }
}

function sysctls(s: FactSources): Pick<DoctorFacts, 'ipForward' | 'rpFilter'> {
  const o = s.overlay
  const devs = ['all', ...(o ? [o.bridge, o.device, o.underlay] : [])].filter((d): d is string => !!d)
  return inNs(s.netns, () => {
    const rpFilter: Record<string, number | undefined> = {}
    for (const d of devs) {
      const v = readSysctl(`/proc/sys/net/ipv4/conf/${d}/rp_filter`)
      // a device that does not exist has no entry; `all` is always there
      if (v !== undefined || d === 'all') rpFilter[d] = v
    }
    const ipForward = readSysctl('/proc/sys/net/ipv4/ip_forward')
    return { ...(ipForward === undefined ? {} : { ipForward }), rpFilter }
  })
}

async function mtus(netns: string | undefined): Promise<Record<string, number>> {
  const nl = Netlink.open(netns)
  try {
    return Object.fromEntries((await nl.links()).map((l) => [l.name, l.mtu]))
  } finally {
    nl.close()
  }
}

async function optional<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn()
  } catch {
    // the tool is not installed or this firewall family is unused: nothing to report on it
    return undefined
  }
}

/** one SOA query for the zone apex (netns-udp.ts, as trace's DNS hop asks); any reply (even NXDOMAIN) proves the server answers */
export async function askDns(address: string, timeoutMs = DNS_TIMEOUT_MS): Promise<DoctorFacts['dns']> {
  const query = dnsPacket.encode({
    type: 'query',
    id: Math.floor(Math.random() * 65535),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'SOA', name: 'plexus.internal' }],
  })
  try {
    const x = await exchangeUdp(undefined, address, 53, [query], timeoutMs)
    const reply = x.replies[0]
    if (!reply || x.firstReplyMs === undefined)
      return { address, answered: false, detail: `no reply within ${timeoutMs} ms` }
    let rcode = '?'
    try {
      rcode = (dnsPacket.decode(reply) as { rcode?: string }).rcode ?? '?'
    } catch {
      // any reply shows a server is there
    }
    return { address, answered: true, detail: `${rcode} in ${x.firstReplyMs.toFixed(1)} ms` }
  } catch (err) {
    return { address, answered: false, detail: errorMessage(err) }
  }
}

/** The filter table as iptables-save prints it and the nftables ruleset; either absent when its tool is. */
export async function readFirewall(
  netns?: string,
): Promise<Pick<DoctorFacts, 'iptablesSave' | 'nftRuleset'>> {
  const [iptablesSave, nftText] = await Promise.all([
    optional(() => run('iptables-save', ['-t', 'filter'], undefined, netns)),
    optional(() => run('nft', ['-j', 'list', 'ruleset'], undefined, netns)),
  ])
  let nftRuleset: unknown
  try {
    nftRuleset = nftText === undefined ? undefined : JSON.parse(nftText)
  } catch {
    nftRuleset = undefined
  }
  return {
    ...(iptablesSave === undefined ? {} : { iptablesSave }),
    ...(nftRuleset === undefined ? {} : { nftRuleset }),
  }
}

export async function gatherDoctorFacts(s: FactSources): Promise<DoctorFacts> {
  const [mtu, firewall, dns] = await Promise.all([
    mtus(s.netns),
    readFirewall(s.netns),
    s.dnsAddress ? askDns(s.dnsAddress) : Promise.resolve(undefined),
  ])
  return {
    ...sysctls(s),
    mtu,
    ...(s.overlay ? { overlay: s.overlay } : {}),
    ...firewall,
    lease: s.lease,
    ...(dns ? { dns } : {}),
  }
}
