// What the host itself holds, read cheaply: the ports its sockets are bound
// to (/proc/net, no process spawned), its addresses, and the bridge's
// route_localnet switch. Only on a conflict is `ss` run, to name the holder.
//
// /proc/self/net and /proc/sys/net show the namespace of the calling thread
// group's leader, i.e. the agent's host namespace (see datapath/netns.ts:
// nothing stays inside another namespace across a JS turn), so these
// synchronous reads always see the host.
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { endianness, networkInterfaces } from 'node:os'
import { promisify } from 'node:util'
import type { HeldPort, Protocol } from './publish.js'

const execFileP = promisify(execFile)
const TCP_LISTEN = '0A'

/** 8 hex digits as /proc prints one 32-bit word (host byte order) → its 4 bytes in network order */
function wordBytes(hex: string, littleEndian: boolean): number[] {
  const b = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))
  return littleEndian ? b.reverse() : b
}

/** the IPv4 address a /proc/net address means: null = every address, undefined = IPv6 only */
function ipv4Of(hex: string, littleEndian: boolean): string | null | undefined {
  const words = hex.match(/.{8}/g) ?? []
  const bytes = words.flatMap((w) => wordBytes(w, littleEndian))
  if (bytes.length === 4) return bytes.every((b) => b === 0) ? null : bytes.join('.')
  if (bytes.every((b) => b === 0)) return null // [::] takes IPv4 too unless v6only; assume the worst
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  return mapped ? bytes.slice(12).join('.') : undefined
}

/**
 * Bound sockets in one /proc/net/{tcp,udp}[6] listing (pure): TCP listeners
 * and every bound UDP socket, as held ports.
 */
export function parseProcNet(text: string, protocol: Protocol, littleEndian = true): HeldPort[] {
  const out: HeldPort[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    const [addr, port] = (f[1] ?? '').split(':')
    if (!addr || !port || (protocol === 'tcp' && f[3] !== TCP_LISTEN)) continue
    const ip = ipv4Of(addr, littleEndian)
    if (ip === undefined) continue
    out.push({
      hostPort: Number.parseInt(port, 16),
      protocol,
      ...(ip ? { hostIp: ip } : {}),
      holder: { kind: 'process' },
    })
  }
  return out
}

/** Ports the host's own sockets hold (IPv4 and dual-stack). */
export function hostSockets(): HeldPort[] {
  const le = endianness() === 'LE'
  return (['tcp', 'udp'] as const).flatMap((proto) =>
    ['', '6'].flatMap((v) => {
      try {
        return parseProcNet(readFileSync(`/proc/self/net/${proto}${v}`, 'utf8'), proto, le)
      } catch {
        return [] // no IPv6 in this kernel
      }
    }),
  )
}

/** `users:(("nc",pid=123,fd=3))` → `process "nc" (pid 123)` (pure) */
export function parseSsUsers(text: string): string | undefined {
  const m = /users:\(\("([^"]*)",pid=(\d+)/.exec(text)
  return m ? `process "${m[1]}" (pid ${m[2]})` : undefined
}

/** Names the process holding a host port (the conflict path only: it spawns ss). */
export async function describeSocketHolder(port: number, protocol: Protocol): Promise<string> {
  const args = ['-H', '-n', '-p', protocol === 'tcp' ? '-tl' : '-ua', `sport = :${port}`]
  try {
    const { stdout } = await execFileP('ss', args, { timeout: 2000 })
    const who = parseSsUsers(stdout)
    if (who) return `host ${who}`
  } catch {
    // ss missing or failed: the port number still says enough
  }
  return `a host process (a ${protocol} socket bound to port ${port})`
}

/** IPv4 addresses of this host's interfaces. */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address),
  )
}

/**
 * Turns on hairpin mode of a bridge port (false when it is not one): with
 * br_netfilter loaded, a DNATed packet for the container it came from is
 * bridged back to its own port, which the bridge refuses otherwise. Through
 * /sys, which shows the agent's namespace (the fixture's `ip netns exec`
 * mounts it so; on a real host it is the root namespace).
 */
export function setHairpin(ifname: string): boolean {
  const file = `/sys/class/net/${ifname}/brport/hairpin_mode`
  try {
    if (readFileSync(file, 'utf8').trim() !== '1') writeFileSync(file, '1')
    return true
  } catch {
    return false
  }
}

/**
 * Sets net.ipv4.conf.<ifname>.route_localnet (only the bridge needs it: DNATed
 * 127.0.0.1 connections leave through it). False when the interface is not
 * there yet.
 */
export function setRouteLocalnet(ifname: string, on: boolean): boolean {
  const file = `/proc/sys/net/ipv4/conf/${ifname}/route_localnet`
  let current: string
  try {
    current = readFileSync(file, 'utf8').trim()
  } catch {
    return false
  }
  const want = on ? '1' : '0'
  if (current !== want) writeFileSync(file, want)
  return true
}
