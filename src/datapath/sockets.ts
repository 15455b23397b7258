// The host's socket table, read cheaply for port admission (src/ports): the
// ports its own sockets are bound to (sock_diag netlink, no process spawned),
// and, only on a conflict, the process holding one (`ss`). Reads only; the
// datapath owns every kernel access, so ports/ opens no netlink socket.
//
// The netlink socket and /proc/self/net belong to the agent's host namespace
// (see netns.ts: nothing stays inside another namespace across a JS turn), so
// these reads always see the host.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { endianness } from 'node:os'
import { promisify } from 'node:util'
import {
  AF_INET,
  AF_INET6,
  ALL_STATES,
  type DiagProtocol,
  dumpSockets,
  TCP_LISTEN,
} from '../lib/sock-diag.js'

const execFileP = promisify(execFile)

/** A port one of the host's sockets takes from published ports. */
export interface BoundPort {
  /** absent: every IPv4 address of the host */
  hostIp?: string
  hostPort: number
  protocol: DiagProtocol
}

/** What port admission reads of the host (components.datapath.sockets). */
export interface HostSockets {
  /** ports the host's own sockets hold (IPv4 and dual-stack) */
  bound(): Promise<BoundPort[]>
  /** names the process holding a host port (the conflict path only: it spawns ss) */
  holder(port: number, protocol: DiagProtocol): Promise<string>
}

/**
 * The port a socket bound to addr (4 or 16 bytes, network order) takes from
 * published ports (pure): 0.0.0.0 or :: every IPv4 address (a dual-stack
 * socket takes IPv4 too unless v6only, which is not visible here: assume
 * the worst), an IPv4 or IPv4-mapped address that one, other IPv6 nothing.
 */
function boundPort(addr: ArrayLike<number>, hostPort: number, protocol: DiagProtocol): BoundPort | undefined {
  const b = Array.from(addr)
  let ip: string | null | undefined
  if (b.every((x) => x === 0)) ip = null
  else if (b.length === 4) ip = b.join('.')
  else if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff)
    ip = b.slice(12).join('.')
  if (ip === undefined || hostPort === 0) return undefined
  return { hostPort, protocol, ...(ip ? { hostIp: ip } : {}) }
}

// ---- sock_diag (src/lib/sock-diag.ts): TCP listeners and every UDP socket ----

async function diagSockets(): Promise<BoundPort[]> {
  const queries = (['tcp', 'udp'] as const).flatMap((protocol) =>
    [AF_INET, AF_INET6].map((family) => ({
      family,
      protocol,
      states: protocol === 'tcp' ? 1 << TCP_LISTEN : ALL_STATES,
    })),
  )
  const bound: BoundPort[] = []
  for (const s of await dumpSockets(queries)) {
    const p = boundPort(s.src, s.sport, s.protocol)
    if (p) bound.push(p)
  }
  return bound
}

// ---- /proc/net, where sock_diag is missing (inet_diag not loadable) ----

const PROC_TCP_LISTEN = '0A'

/**
 * Bound sockets in one /proc/net/{tcp,udp}[6] listing (pure): TCP listeners
 * and every bound UDP socket. Addresses are printed as 32-bit words in host
 * byte order.
 */
export function parseProcNet(text: string, protocol: DiagProtocol, littleEndian = true): BoundPort[] {
  const out: BoundPort[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    const [addr, port] = (f[1] ?? '').split(':')
    if (!addr || !port || (protocol === 'tcp' && f[3] !== PROC_TCP_LISTEN)) continue
    const bytes = (addr.match(/.{8}/g) ?? []).flatMap((w) => {
      const b = [0, 2, 4, 6].map((i) => Number.parseInt(w.slice(i, i + 2), 16))
      return littleEndian ? b.reverse() : b
    })
    const bound = boundPort(bytes, Number.parseInt(port, 16), protocol)
    if (bound) out.push(bound)
  }
  return out
}

function procSockets(): BoundPort[] {
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

/** The host's socket table; stateless, so one for the process. */
export const hostSockets: HostSockets = {
  /**
   * sock_diag first: reading /proc/net/tcp walks the machine's whole TCP hash
   * table, 5 ms here for a namespace with three sockets, on every container
   * start with a port.
   */
  async bound() {
    try {
      return await diagSockets()
    } catch {
      return procSockets()
    }
  },
  async holder(port, protocol) {
    const args = ['-H', '-n', '-p', protocol === 'tcp' ? '-tl' : '-ua', `sport = :${port}`]
    try {
      const { stdout } = await execFileP('ss', args, { timeout: 2000 })
      const who = parseSsUsers(stdout)
      if (who) return `host ${who}`
    } catch {
      // ss missing or failed: the port number still says enough
    }
    return `a host process (a ${protocol} socket bound to port ${port})`
  },
}
