// sock_diag (NETLINK_SOCK_DIAG, what `ss` uses): dumps of this namespace's
// TCP and UDP sockets, filtered by the kernel on protocol and state, with
// struct tcp_info when asked. Read-only; no process spawned. Used by ports/
// (bound ports) and cluster/ (the kernel's RTT of the cluster's connections).
//
// Layouts: linux/inet_diag.h (inet_diag_req_v2, inet_diag_msg) and
// linux/tcp.h (tcp_info).
import { Address6 } from 'ip-address'
import { createNetlink, FlagsGet } from 'netlink'
import { nlAttributes } from './nlattr.js'

const NETLINK_SOCK_DIAG = 4
const SOCK_DIAG_BY_FAMILY = 20
export const AF_INET = 2
export const AF_INET6 = 10
export const IPPROTO = { tcp: 6, udp: 17 } as const
export type DiagProtocol = keyof typeof IPPROTO
/** TCP states (include/net/tcp_states.h) used as filters */
export const TCP_ESTABLISHED = 1
export const TCP_LISTEN = 10
/** every state: UDP sockets have no TCP state to filter on */
export const ALL_STATES = 0xffffffff
/** rtattr type of struct tcp_info in an answer; its request bit is 1 << (type - 1) */
const INET_DIAG_INFO = 2
/** sizeof(struct inet_diag_req_v2) */
const REQ_LEN = 56
/** sizeof(struct inet_diag_msg): the attributes follow it */
const MSG_LEN = 72

export interface DiagQuery {
  family: number
  protocol: DiagProtocol
  /** bit mask of states, 1 << state (ALL_STATES for UDP) */
  states: number
  /** ask for struct tcp_info with each TCP socket */
  tcpInfo?: boolean
}

/** One socket of a dump. Addresses are 4 (IPv4) or 16 bytes, network order. */
export interface DiagSocket {
  protocol: DiagProtocol
  family: number
  state: number
  sport: number
  dport: number
  src: Buffer
  dst: Buffer
  /** struct tcp_info as the kernel sent it (its length depends on the kernel version) */
  tcpInfo?: Buffer
}

/** A dump request (pure). */
export function diagRequest(q: DiagQuery): Buffer {
  const b = Buffer.alloc(REQ_LEN)
  b[0] = q.family
  b[1] = IPPROTO[q.protocol]
  b[2] = q.tcpInfo ? 1 << (INET_DIAG_INFO - 1) : 0
  b.writeUInt32LE(q.states >>> 0, 4)
  return b
}

/** One struct inet_diag_msg with its attributes (pure); undefined when too short to hold the addresses. */
export function parseDiagMessage(msg: Buffer, protocol: DiagProtocol): DiagSocket | undefined {
  if (msg.length < 40) return undefined
  const family = msg[0] as number
  const alen = family === AF_INET ? 4 : 16
  const sock: DiagSocket = {
    protocol,
    family,
    state: msg[1] as number,
    sport: msg.readUInt16BE(4),
    dport: msg.readUInt16BE(6),
    src: Buffer.from(msg.subarray(8, 8 + alen)),
    dst: Buffer.from(msg.subarray(24, 24 + alen)),
  }
  const info = nlAttributes(msg.subarray(MSG_LEN)).get(INET_DIAG_INFO)
  if (info) sock.tcpInfo = Buffer.from(info)
  return sock
}

/** A sock_diag netlink socket in the current network namespace (it stays bound to it). */
export const openSockDiag = () => createNetlink(NETLINK_SOCK_DIAG)

/**
 * Runs the dumps, one after another on one netlink socket: this process's
 * network namespace, or another one when `open` makes the socket there
 * (datapath/netns.ts withNetns).
 */
export async function dumpSockets(queries: DiagQuery[], open = openSockDiag): Promise<DiagSocket[]> {
  const nl = open()
  const out: DiagSocket[] = []
  try {
    // one dump at a time: the netlink package reassembles one multipart answer per socket
    for (const q of queries) {
      const [msgs] = await nl.request(SOCK_DIAG_BY_FAMILY, diagRequest(q), { flags: FlagsGet.DUMP })
      for (const m of msgs) {
        const s = m.type === SOCK_DIAG_BY_FAMILY ? parseDiagMessage(m.data, q.protocol) : undefined
        if (s) out.push(s)
      }
    }
    return out
  } finally {
    nl.close()
  }
}

/** struct tcp_info offsets (linux/tcp.h): tcpi_rtt at 68, tcpi_min_rtt at 148, both in microseconds */
const TCPI_RTT = 68
const TCPI_MIN_RTT = 148

/**
 * The kernel's round trip of one TCP connection in ms (pure): the windowed
 * minimum RTT (tcpi_min_rtt, Linux 4.10+) when present, else the smoothed RTT.
 * The minimum is the path's own delay: smoothed samples also hold the peer's
 * delayed ACKs and the time its process took to answer.
 */
export function tcpInfoRttMs(info: Buffer): number | undefined {
  const min = info.length >= TCPI_MIN_RTT + 4 ? info.readUInt32LE(TCPI_MIN_RTT) : 0
  // 0 and ~0 both mean "no sample yet"
  if (min > 0 && min !== 0xffffffff) return min / 1000
  const srtt = info.length >= TCPI_RTT + 4 ? info.readUInt32LE(TCPI_RTT) : 0
  return srtt > 0 ? srtt / 1000 : undefined
}

/** An address of a dump as text: dotted IPv4, the IPv4 inside an IPv4-mapped IPv6 address, else RFC 5952 IPv6. */
export function addressText(b: Buffer): string {
  if (b.length === 4) return Array.from(b).join('.')
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff)
    return Array.from(b.subarray(12)).join('.')
  return Address6.fromUnsignedByteArray(Array.from(b)).correctForm()
}
