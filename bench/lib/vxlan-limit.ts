// The limit Plexus' vxlan backend is held to (issue 20 item 5): kernel VXLAN
// made by hand between two fixture hosts' namespaces, with nothing of Plexus
// on its path, beside the cluster's own vxlan device on the same underlay.
//
//  - host to host: one VXLAN device per host namespace (the Plexus device's
//    MTU, learning off, one all-zero FDB entry to the other host), an address
//    on it, iperf3 between the hosts. The limit.
//  - container to container: the same tunnel with a namespace behind a
//    bridge and a veth pair on each side, routed across it, and no firewall
//    rule of ours: what a container's path costs without Plexus' rules.
//  - jumbo: the host-to-host tunnel after the underlay's MTU is raised to
//    9,000 (veths and bridge), the tunnel to 8,950: what the kernel allows
//    beyond the underlay the fixture has. Changes the fixture: run it last.
//
// Offloads stay as the kernel sets them: on a veth underlay GSO and the UDP
// tunnel segmentation are on, and turning GRO on (ethtool -K gro on) did not
// change the figures on this machine (checked by hand, 2026-12-04).
import { execFileSync } from 'node:child_process'

export const LIMIT_PREFIX = '198.18.42'
/** the hand-made tunnel: a VNI and port of its own, so it never meets the cluster's (VNI 1, 8472) */
const VNI = '4242'
const PORT = '4790'
const DEV = 'plxlim'

export interface LimitHost {
  ns: string
  ip: string
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] })

/** removal that may find the object gone already (its namespace went first, or it was removed before) */
function gone(...args: string[]): void {
  try {
    ip(...args)
  } catch {
    // nothing left to remove
  }
}

/** the MTU of a link in a namespace */
export function linkMtu(ns: string, dev: string): number {
  const [link] = JSON.parse(ip('-n', ns, '-j', 'link', 'show', dev).toString()) as { mtu: number }[]
  if (!link) throw new Error(`no ${dev} in ${ns}`)
  return link.mtu
}

/**
 * Builds the tunnel between a and b (underlay device eth0) at `mtu`; host i
 * gets LIMIT_PREFIX.i. Returns the address of b's end, and a teardown.
 */
export function handTunnel(a: LimitHost, b: LimitHost, mtu: number): { target: string; remove: () => void } {
  const ends: [LimitHost, LimitHost, number][] = [
    [a, b, 1],
    [b, a, 2],
  ]
  for (const [self, peer, i] of ends) {
    ip(
      '-n',
      self.ns,
      'link',
      'add',
      DEV,
      'type',
      'vxlan',
      'id',
      VNI,
      'dstport',
      PORT,
      'local',
      self.ip,
      'dev',
      'eth0',
      'nolearning',
    )
    ip('-n', self.ns, 'link', 'set', DEV, 'mtu', String(mtu), 'up')
    ip('-n', self.ns, 'addr', 'add', `${LIMIT_PREFIX}.${i}/24`, 'dev', DEV)
    execFileSync('bridge', ['-n', self.ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', DEV, 'dst', peer.ip])
  }
  return {
    target: `${LIMIT_PREFIX}.2`,
    remove: () => {
      for (const [self] of ends) gone('-n', self.ns, 'link', 'del', DEV)
    },
  }
}

/**
 * A namespace `<prefix>-c<i>` behind a bridge and a veth pair on each host,
 * routed over the hand-made tunnel (198.19.<i>.0/24 per host), no rules.
 * Returns the client's and the server's namespaces and the server's address.
 */
export function handContainers(
  prefix: string,
  a: LimitHost,
  b: LimitHost,
  mtu: number,
): { client: string; server: string; target: string; remove: () => void } {
  const made: string[] = []
  const hosts: [LimitHost, number][] = [
    [a, 1],
    [b, 2],
  ]
  try {
    for (const [host, i] of hosts) {
      const ctr = `${prefix}-c${i}`
      ip('netns', 'add', ctr)
      made.push(ctr)
      ip('-n', host.ns, 'link', 'add', 'plxlimbr', 'type', 'bridge')
      ip('-n', host.ns, 'link', 'set', 'plxlimbr', 'up')
      ip('-n', host.ns, 'addr', 'add', `198.19.${i}.1/24`, 'dev', 'plxlimbr')
      ip('-n', host.ns, 'link', 'add', 'plxlimv', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctr)
      ip('-n', host.ns, 'link', 'set', 'plxlimv', 'master', 'plxlimbr', 'up')
      ip('-n', ctr, 'link', 'set', 'lo', 'up')
      ip('-n', ctr, 'link', 'set', 'eth0', 'mtu', String(mtu), 'up')
      ip('-n', ctr, 'addr', 'add', `198.19.${i}.2/24`, 'dev', 'eth0')
      ip('-n', ctr, 'route', 'add', 'default', 'via', `198.19.${i}.1`)
      ip('-n', host.ns, 'route', 'add', `198.19.${3 - i}.0/24`, 'via', `${LIMIT_PREFIX}.${3 - i}`, 'dev', DEV)
    }
  } catch (err) {
    for (const n of made) gone('netns', 'del', n)
    throw err
  }
  return {
    client: `${prefix}-c1`,
    server: `${prefix}-c2`,
    target: '198.19.2.2',
    remove: () => {
      for (const n of made) gone('netns', 'del', n)
      // the bridge goes with the host namespace's teardown too; removed here so a rerun on the same fixture can build it again
      for (const [host] of hosts) gone('-n', host.ns, 'link', 'del', 'plxlimbr')
    },
  }
}

/** Raises the underlay of a fixture to a 9,000-byte MTU: its bridge, its veth ends, the hosts' eth0. */
export function jumboUnderlay(underlayNs: string, hosts: LimitHost[]): void {
  const links = JSON.parse(ip('-n', underlayNs, '-j', 'link', 'show').toString()) as { ifname: string }[]
  // the ports first: a bridge's MTU cannot exceed its smallest port's
  for (const l of links.filter((l) => l.ifname !== 'lo'))
    ip('-n', underlayNs, 'link', 'set', l.ifname, 'mtu', '9000')
  for (const h of hosts) ip('-n', h.ns, 'link', 'set', 'eth0', 'mtu', '9000')
}
