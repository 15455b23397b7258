// plexctl doctor's checks: pure functions over DoctorFacts (gathered once by
// facts.ts), so each rule is unit-tested without a kernel. Every finding
// says what was looked at (evidence) and, when it is not ok, what to do (fix).
import { REFUSALS_KEPT, type Refusal } from '../../cluster/refusals.js'
import {
  ahead,
  foreignNftChains,
  foreignNftDrops,
  parseIptablesFilter,
  type XtChain,
  xtRuleDrops,
} from '../firewall-view.js'

export type FindingStatus = 'ok' | 'warn' | 'fail'

export interface Finding {
  check: string
  status: FindingStatus
  evidence: string
  fix?: string
}

/** what one host looks like, as far as the checks care (read by facts.ts) */
export interface DoctorFacts {
  /** /proc/sys/net/ipv4/ip_forward; undefined when unreadable */
  ipForward?: number
  /** net.ipv4.conf.<name>.rp_filter for `all` and each device Plexus forwards through */
  rpFilter: Record<string, number | undefined>
  /** MTU per device name (devices that exist) */
  mtu: Record<string, number>
  /** what this host's overlay is, from its lease (absent: no lease) */
  overlay?: {
    backend: string
    /** UDP port of the encapsulation (vxlan, wireguard) */
    port?: number
    bridge: string
    /** the encapsulating device (vxlan, wireguard) */
    device?: string
    underlay: string
    /** bytes the encapsulation adds (vxlan 50, wireguard 60, host-gw 0) */
    overhead: number
    /** the overlay MTU the lease asks for */
    mtu: number
    /** the cluster network, for the forwarded-traffic rules */
    network: string
  }
  /** iptables-save output (undefined: iptables not there or not readable) */
  iptablesSave?: string
  /** `nft -j list ruleset` parsed (undefined: nft not there) */
  nftRuleset?: unknown
  lease: { state: string; reason?: string; subnet?: string }
  /** a DNS query to the bridge gateway address (absent: DNS disabled or no lease) */
  dns?: { address: string; answered: boolean; detail: string }
  /** the other members' clocks against this host's (absent: not asked) */
  clock?: { toleranceMs: number; peers: ClockSample[] }
  /** the cluster handshakes this host refused last, and the time they are read at (absent: standalone) */
  handshakes?: { now: number; refused: Pick<Refusal, 'at' | 'remote' | 'direction' | 'kind'>[] }
}

/** one member's clock against this host's: its time minus the middle of a round trip of rttMs */
export interface ClockSample {
  host: string
  offsetMs: number
  rttMs: number
}

const CAUSES_DROP = ['DROP', 'REJECT']

function ipForward(f: DoctorFacts): Finding {
  const check = 'ip-forwarding'
  if (f.ipForward === undefined)
    return { check, status: 'warn', evidence: 'net.ipv4.ip_forward could not be read' }
  if (f.ipForward === 1) return { check, status: 'ok', evidence: 'net.ipv4.ip_forward = 1' }
  return {
    check,
    status: 'fail',
    evidence: `net.ipv4.ip_forward = ${f.ipForward}: the host drops every packet between containers and the overlay`,
    fix: 'sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d so a reboot keeps it); the datapath sets it on each pass, so something else turns it off',
  }
}

/**
 * rp_filter 1 (strict) drops a packet whose source the host would not route
 * back out of the device it came in on; the kernel uses max(all, device).
 * Overlay sources arrive on the VXLAN device and leave by it, so strict mode
 * is usually harmless there but breaks asymmetric paths (DirectRouting,
 * several underlay devices); loose (2) is what Calico and flannel recommend.
 */
function rpFilter(f: DoctorFacts): Finding {
  const check = 'rp-filter'
  const all = f.rpFilter.all ?? 0
  const devs = f.overlay ? [f.overlay.bridge, f.overlay.device, f.overlay.underlay] : []
  const strict = devs
    .filter((d): d is string => d !== undefined && d in f.rpFilter)
    .map((d) => ({ d, eff: Math.max(all, f.rpFilter[d] ?? 0), own: f.rpFilter[d] }))
    .filter((x) => x.eff === 1)
  const shown = Object.entries(f.rpFilter)
    .map(([k, v]) => `${k}=${v ?? '?'}`)
    .join(', ')
  if (!strict.length) return { check, status: 'ok', evidence: `rp_filter: ${shown}` }
  return {
    check,
    status: 'warn',
    evidence: `strict rp_filter (effective max(all, device) = 1) on ${strict.map((x) => x.d).join(', ')} (${shown}): a packet whose reverse route leaves by another device is dropped silently`,
    fix: `sysctl -w net.ipv4.conf.all.rp_filter=2 ${strict.map((x) => `net.ipv4.conf.${x.d}.rp_filter=2`).join(' ')} (loose mode)`,
  }
}

function xtDropping(
  chain: XtChain | undefined,
  plexusChain: string,
  flow: Parameters<typeof xtRuleDrops>[1],
) {
  if (!chain) return undefined
  const { rules, jump } = ahead(chain, plexusChain)
  const drops = rules.filter((r) => xtRuleDrops(r, flow))
  const policyDrops = CAUSES_DROP.includes(chain.policy)
  return { jump, drops, policyDrops, policy: chain.policy }
}

function iptablesFindings(f: DoctorFacts): Finding[] {
  if (f.iptablesSave === undefined || !f.overlay) return []
  const chains = parseIptablesFilter(f.iptablesSave)
  const o = f.overlay
  const out: Finding[] = []
  const fwd = xtDropping(chains.get('FORWARD'), 'PLEXUS-FORWARD', { src: o.network.split('/')[0] })
  if (fwd) {
    const check = 'iptables-forward'
    if (fwd.drops.length)
      out.push({
        check,
        status: 'fail',
        evidence: `FORWARD has rules ahead of the jump to PLEXUS-FORWARD that drop forwarded container traffic: ${fwd.drops.map((r) => `-A FORWARD ${r}`).join('; ')}`,
        fix: 'delete those rules or move them after the PLEXUS-FORWARD jump (iptables -D FORWARD <rule>), or exempt the cluster network from them',
      })
    else if (!fwd.jump && fwd.policyDrops)
      out.push({
        check,
        status: 'fail',
        evidence: `FORWARD policy ${fwd.policy} and no jump to PLEXUS-FORWARD: forwarded container traffic is dropped`,
        fix: 'the datapath puts the jump back within one pass (datapath.reconcileIntervalMs); if it stays missing, see `plexctl routes` for a failed firewall batch',
      })
    else
      out.push({
        check,
        status: 'ok',
        evidence: `FORWARD policy ${fwd.policy}, jump to PLEXUS-FORWARD ${fwd.jump ? 'present' : 'absent'}, no dropping rule ahead of it`,
      })
  }
  if (o.port !== undefined) {
    const inp = xtDropping(chains.get('INPUT'), 'PLEXUS-INPUT', { proto: 'udp', dport: o.port })
    if (inp) {
      const check = 'iptables-overlay-port'
      if (inp.drops.length)
        out.push({
          check,
          status: 'fail',
          evidence: `INPUT drops UDP ${o.port} (${o.backend}) ahead of PLEXUS-INPUT: ${inp.drops.map((r) => `-A INPUT ${r}`).join('; ')}`,
          fix: `accept UDP ${o.port} from the other hosts' underlay addresses before that rule`,
        })
      else if (inp.policyDrops && !inp.jump)
        out.push({
          check,
          status: 'fail',
          evidence: `INPUT policy ${inp.policy} without the jump to PLEXUS-INPUT: UDP ${o.port} from other hosts is dropped`,
          fix: `iptables -I INPUT -p udp --dport ${o.port} -j ACCEPT, or let the datapath restore its jump`,
        })
      else
        out.push({
          check,
          status: 'ok',
          evidence: `INPUT policy ${inp.policy}, no rule ahead of PLEXUS-INPUT drops UDP ${o.port}`,
        })
    }
  }
  return out
}

function nftFindings(f: DoctorFacts): Finding[] {
  if (f.nftRuleset === undefined || !f.overlay) return []
  const opts = { skipXtables: f.iptablesSave !== undefined }
  const check = 'nft-foreign-chains'
  const hooks = ['forward', 'input', 'prerouting']
  const policies = foreignNftChains(f.nftRuleset, opts).filter(
    (c) => hooks.includes(c.hook) && c.policy === 'drop',
  )
  const drops = foreignNftDrops(f.nftRuleset, { ...opts, hooks })
  if (!policies.length && !drops.length)
    return [
      {
        check,
        status: 'ok',
        evidence: 'no nftables base chain outside Plexus drops on forward, input or prerouting',
      },
    ]
  const out: Finding[] = []
  if (policies.length)
    out.push({
      check,
      status: 'fail',
      evidence: `nftables base chains with policy drop outside Plexus' table: ${policies.map((c) => `${c.family} ${c.table} ${c.name} (hook ${c.hook}, priority ${c.priority})`).join('; ')}; every base chain on a hook sees the packet, so Plexus' accepts do not save it`,
      fix: `accept the overlay in that chain too, e.g. nft insert rule ${policies[0]?.family} ${policies[0]?.table} ${policies[0]?.name} ip saddr ${f.overlay.network} accept${f.overlay.port ? `; udp dport ${f.overlay.port} accept` : ''}`,
    })
  if (drops.length)
    out.push({
      check: 'nft-foreign-rules',
      status: 'warn',
      evidence: `drop/reject rules outside Plexus' table on forward/input/prerouting: ${drops.join('; ')}`,
      fix: `make sure they do not match the cluster network ${f.overlay.network} or UDP ${f.overlay.port ?? '-'}`,
    })
  return out
}

function mtu(f: DoctorFacts): Finding | undefined {
  const o = f.overlay
  if (!o) return undefined
  const check = 'underlay-mtu'
  const under = f.mtu[o.underlay]
  if (under === undefined)
    return {
      check,
      status: 'fail',
      evidence: `underlay device ${o.underlay} not found`,
      fix: 'check datapath.underlayInterface / --underlay-interface',
    }
  const needed = o.mtu + o.overhead
  if (under < needed)
    return {
      check,
      status: 'fail',
      evidence: `underlay ${o.underlay} MTU ${under} < overlay MTU ${o.mtu} + ${o.overhead} (${o.backend}) = ${needed}: full-size packets are dropped or fragmented`,
      fix: `raise ${o.underlay}'s MTU to ${needed}, or set Backend.MTU to ${under - o.overhead} (plexctl network init) and restart the containers`,
    }
  const dev = o.device ? f.mtu[o.device] : undefined
  if (dev !== undefined && dev > under - o.overhead)
    return {
      check,
      status: 'fail',
      evidence: `${o.device} MTU ${dev} > underlay ${o.underlay} MTU ${under} - ${o.overhead}`,
      fix: `ip link set ${o.device} mtu ${under - o.overhead}`,
    }
  return {
    check,
    status: 'ok',
    evidence: `underlay ${o.underlay} MTU ${under} >= overlay ${o.mtu} + ${o.overhead}`,
  }
}

function lease(f: DoctorFacts): Finding {
  const check = 'lease'
  if (f.lease.state === 'acquired')
    return { check, status: 'ok', evidence: `lease ${f.lease.subnet ?? '?'} held (acquired)` }
  return {
    check,
    status: 'fail',
    evidence: `no subnet lease held: ${f.lease.state}${f.lease.reason ? ` (${f.lease.reason})` : ''}`,
    fix:
      f.lease.state === 'isolated' || f.lease.state === 'fenced'
        ? 'the host cannot reach a majority of the cluster: check `plexctl hosts` and the underlay'
        : 'see `plexctl subnets` and `plexctl status`; a missing network config is set with `plexctl network init`',
  }
}

function dns(f: DoctorFacts): Finding | undefined {
  if (!f.dns) return undefined
  const check = 'dns'
  if (f.dns.answered)
    return { check, status: 'ok', evidence: `DNS on ${f.dns.address}:53 answered (${f.dns.detail})` }
  return {
    check,
    status: 'fail',
    evidence: `DNS on ${f.dns.address}:53 did not answer: ${f.dns.detail}`,
    fix: 'see the agent log (component dns) and `plexctl dns`; a foreign INPUT rule may drop UDP 53 from the bridge',
  }
}

/**
 * The failure detector times a suspicion by the prober's clock and a node record by its writer's
 * (src/cluster/detector.ts), allowing one probe period for skew: a host whose clock is off by more
 * is declared suspect or dead too early or too late by the others. An offset counts only beyond
 * what the round trip leaves uncertain.
 */
function clock(f: DoctorFacts): Finding | undefined {
  if (!f.clock) return undefined
  const check = 'clock-offset'
  const { toleranceMs, peers } = f.clock
  if (peers.length === 0)
    return { check, status: 'ok', evidence: 'no other host answered: nothing to compare' }
  const show = (p: ClockSample) =>
    `${p.host} ${p.offsetMs >= 0 ? '+' : ''}${p.offsetMs} ms (±${Math.ceil(p.rttMs / 2)})`
  const off = peers.filter((p) => Math.abs(p.offsetMs) - p.rttMs / 2 > toleranceMs)
  if (off.length === 0)
    return {
      check,
      status: 'ok',
      evidence: `${peers.length === 1 ? 'the other host' : `all ${peers.length} other hosts`} within ${toleranceMs} ms of this one: ${peers.map(show).join(', ')}`,
    }
  return {
    check,
    status: 'warn',
    evidence: `clock offset beyond the failure detector's ${toleranceMs} ms (one probe period): ${off.map(show).join(', ')}; their suspicions and node records look older or newer than they are, so hosts are declared suspect or dead too early or too late`,
    fix: 'keep every host on NTP (chrony or systemd-timesyncd); `chronyc tracking` shows the offset',
  }
}

/** how far back a refused handshake counts: a host that dials with another key redials within this */
export const KEY_MISMATCH_WINDOW_MS = 10 * 60_000

/** the address of a multiaddr (/ip4/A/tcp/P → A); the whole text when it has none */
function addressOf(multiaddr: string): string {
  return /^\/(?:ip4|ip6|dns|dns4|dns6)\/([^/]+)/.exec(multiaddr)?.[1] ?? multiaddr
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`
}

/**
 * A host that holds another cluster key is refused at every dial, both ends (src/cluster/
 * protector.ts): nothing else shows it but a counter and a log line. The protector tells a key
 * mismatch from another failed handshake (a timeout, a close, a port scanner's garbage): only
 * the first is this finding. An inbound refusal is named by the dialer's address (its port is
 * ephemeral), an outbound one by the multiaddr this host dialed.
 */
function clusterKey(f: DoctorFacts): Finding | undefined {
  if (!f.handshakes) return undefined
  const check = 'cluster-key'
  const { now, refused } = f.handshakes
  const recent = refused.filter((r) => now - r.at <= KEY_MISMATCH_WINDOW_MS)
  const mismatches = recent.filter((r) => r.kind === 'key-mismatch').sort((a, b) => b.at - a.at)
  const last = mismatches[0]
  if (!last) {
    const other = recent.length
    return {
      check,
      status: 'ok',
      evidence: `no connection refused for another cluster key in the last 10 min${other ? ` (${other} other failed handshake${other === 1 ? '' : 's'}: a timeout, a close or not Plexus)` : ''}`,
    }
  }
  const name = (r: (typeof mismatches)[number]) =>
    r.direction === 'inbound' ? addressOf(r.remote) : r.remote
  const by = new Map<string, number>()
  for (const r of mismatches) by.set(name(r), (by.get(name(r)) ?? 0) + 1)
  const from = [...by].slice(0, 3).map(([a, n]) => `${a} (${n})`)
  const more = by.size > 3 ? ` and ${by.size - 3} more` : ''
  const count = `${mismatches.length >= REFUSALS_KEPT ? 'at least ' : ''}${mismatches.length}`
  return {
    check,
    status: 'warn',
    evidence: `${count} connection${mismatches.length === 1 ? '' : 's'} refused in the last 10 min because the other end holds another cluster key, from ${from.join(', ')}${more}; the last ${ago(now - last.at)} ago (${last.direction})`,
    fix:
      last.direction === 'inbound'
        ? `a host at ${name(last)} dials this one with another cluster key: give it this cluster's key (cluster.keyFile) or take this host out of its peers list (cluster.bootstrap)`
        : `this host dials ${name(last)}, which holds another cluster key: give it this cluster's key (cluster.keyFile) or take it out of this host's peers list (cluster.bootstrap)`,
  }
}

/** every check, in the order an operator reads them */
export function runChecks(f: DoctorFacts): Finding[] {
  return [
    lease(f),
    ipForward(f),
    rpFilter(f),
    ...iptablesFindings(f),
    ...nftFindings(f),
    mtu(f),
    dns(f),
    clock(f),
    clusterKey(f),
  ].filter((x): x is Finding => x !== undefined)
}

/** worst status of a set of findings */
export function overall(findings: Finding[]): FindingStatus {
  if (findings.some((x) => x.status === 'fail')) return 'fail'
  return findings.some((x) => x.status === 'warn') ? 'warn' : 'ok'
}
