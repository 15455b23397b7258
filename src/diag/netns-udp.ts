// Datagrams sent from inside a container's network namespace and the
// replies that come back. Node's dgram creates its socket after the JS turn
// (bind resolves the address on the next tick), too late for withNetns; the
// DNS server's native socket (native/udp.c) is created synchronously, so one
// made inside withNetns lives in the container's namespace for its whole life.
import { endianness } from 'node:os'
import { withNetns } from '../datapath/netns.js'
import { closeBatchSocket, openBatchSocket, udpAddon } from '../dns/udp.js'
import { parseIPv4 } from '../ipam/cidr.js'

const AF_INET = 2

/** struct sockaddr_in as the kernel reads it: family in host order, port and address in network order */
function sockaddrIn(address: string, port: number): Buffer {
  const n = parseIPv4(address)
  if (n === undefined) throw new Error(`${address} is not an IPv4 address`)
  const b = Buffer.alloc(16)
  if (endianness() === 'LE') b.writeUInt16LE(AF_INET, 0)
  else b.writeUInt16BE(AF_INET, 0)
  b.writeUInt16BE(port, 2)
  b.writeUInt32BE(n >>> 0, 4)
  return b
}

export interface Exchange {
  /** every datagram that came back before the deadline, in order */
  replies: Buffer[]
  /** ms from the send to the first reply */
  firstReplyMs?: number
  /** the socket's own port (for finding the flow in conntrack) */
  sport: number
}

/**
 * Sends each datagram to address:port from a socket made in `netns` (absent: the agent's own
 * namespace), collects replies until `enough` says so or timeoutMs passes, then closes it.
 */
export async function exchangeUdp(
  netns: string | undefined,
  address: string,
  port: number,
  datagrams: Buffer[],
  timeoutMs: number,
  enough: (replies: Buffer[]) => boolean = (r) => r.length >= datagrams.length,
): Promise<Exchange> {
  const { SLOT_SIZE, META_STRIDE, META_LEN } = udpAddon()
  const replies: Buffer[] = []
  const started = performance.now()
  let firstReplyMs: number | undefined
  let finish = () => {}
  const done = new Promise<void>((resolve) => {
    finish = resolve
  })
  const open = () =>
    openBatchSocket('0.0.0.0', 0, (n) => {
      for (let i = 0; i < n; i++) {
        const len = sock.meta[i * META_STRIDE + META_LEN] ?? 0
        replies.push(Buffer.from(sock.input.subarray(i * SLOT_SIZE, i * SLOT_SIZE + len)))
      }
      firstReplyMs ??= performance.now() - started
      if (enough(replies)) finish()
    })
  const sock = netns === undefined ? open() : withNetns(netns, open)
  const timer = setTimeout(finish, timeoutMs)
  try {
    const peer = sockaddrIn(address, port)
    for (const d of datagrams) sock.sendTo(d, peer)
    await done
  } finally {
    clearTimeout(timer)
    await closeBatchSocket(sock)
  }
  return { replies, sport: sock.port, ...(firstReplyMs === undefined ? {} : { firstReplyMs }) }
}
