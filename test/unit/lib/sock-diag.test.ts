// sock_diag's pure parts against the kernel's layouts (linux/inet_diag.h,
// linux/tcp.h), built here field by field.
import t from 'tap'
import {
  AF_INET,
  AF_INET6,
  addressText,
  diagRequest,
  parseDiagMessage,
  TCP_ESTABLISHED,
  tcpInfoRttMs,
} from '../../../src/lib/sock-diag.js'

/** struct tcp_info of `len` bytes with tcpi_rtt (offset 68) and tcpi_min_rtt (offset 148) in µs */
function tcpInfo(rttUs: number, minRttUs: number, len = 232): Buffer {
  const b = Buffer.alloc(len)
  b.writeUInt32LE(rttUs, 68)
  if (len >= 152) b.writeUInt32LE(minRttUs, 148)
  return b
}

/** an rtattr: u16 length with header, u16 type, payload padded to 4 */
function attr(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt16LE(4 + payload.length, 0)
  head.writeUInt16LE(type, 2)
  return Buffer.concat([head, payload, Buffer.alloc((4 - (payload.length % 4)) % 4)])
}

/** struct inet_diag_msg (72 bytes) for an IPv4 connection, then attributes */
function diagMsg(src: number[], sport: number, dst: number[], dport: number, ...attrs: Buffer[]): Buffer {
  const m = Buffer.alloc(72)
  m[0] = AF_INET
  m[1] = TCP_ESTABLISHED
  m.writeUInt16BE(sport, 4)
  m.writeUInt16BE(dport, 6)
  Buffer.from(src).copy(m, 8)
  Buffer.from(dst).copy(m, 24)
  return Buffer.concat([m, ...attrs])
}

t.test('a dump request: family, protocol, the tcp_info bit, the state mask', async (t) => {
  const r = diagRequest({ family: AF_INET6, protocol: 'tcp', states: 1 << TCP_ESTABLISHED, tcpInfo: true })
  t.equal(r.length, 56, 'sizeof(struct inet_diag_req_v2)')
  t.same([r[0], r[1], r[2]], [AF_INET6, 6, 0b10], 'INET_DIAG_INFO is attribute 2: bit 1')
  t.equal(r.readUInt32LE(4), 2)
  t.equal(diagRequest({ family: AF_INET, protocol: 'udp', states: 0xffffffff })[2], 0, 'no tcp_info asked')
})

t.test('a message: ports, addresses, and tcp_info found among other attributes', async (t) => {
  const other = attr(1, Buffer.from([1, 2, 3])) // INET_DIAG_MEMINFO, 3 bytes: padding follows
  const msg = diagMsg([192, 0, 2, 11], 40000, [192, 0, 2, 12], 7373, other, attr(2, tcpInfo(1200, 48)))
  const s = parseDiagMessage(msg, 'tcp')
  t.match(s, { protocol: 'tcp', family: AF_INET, state: TCP_ESTABLISHED, sport: 40000, dport: 7373 })
  t.equal(addressText(s?.src as Buffer), '192.0.2.11')
  t.equal(addressText(s?.dst as Buffer), '192.0.2.12')
  t.equal(tcpInfoRttMs(s?.tcpInfo as Buffer), 0.048, 'the windowed minimum, in ms')
  t.equal(
    parseDiagMessage(diagMsg([1, 1, 1, 1], 1, [2, 2, 2, 2], 2), 'tcp')?.tcpInfo,
    undefined,
    'none asked',
  )
  t.equal(parseDiagMessage(Buffer.alloc(20), 'tcp'), undefined, 'too short')
  // an attribute claiming more bytes than the message holds ends the walk
  const broken = diagMsg([1, 1, 1, 1], 1, [2, 2, 2, 2], 2, Buffer.from([200, 0, 2, 0]))
  t.equal(parseDiagMessage(broken, 'tcp')?.tcpInfo, undefined)
})

t.test('the RTT of tcp_info: the minimum, else the smoothed RTT, else none', async (t) => {
  t.equal(tcpInfoRttMs(tcpInfo(2500, 0)), 2.5, 'no minimum sampled yet')
  t.equal(tcpInfoRttMs(tcpInfo(2500, 0xffffffff)), 2.5, '~0 is no sample either')
  t.equal(tcpInfoRttMs(tcpInfo(2500, 0, 104)), 2.5, 'a kernel before 4.10: no tcpi_min_rtt')
  t.equal(tcpInfoRttMs(tcpInfo(0, 0)), undefined)
  t.equal(tcpInfoRttMs(Buffer.alloc(40)), undefined)
})

t.test('addresses as text', async (t) => {
  const v6 = Buffer.alloc(16)
  v6.writeUInt16BE(0x2001, 0)
  v6.writeUInt16BE(0x0db8, 2)
  v6[15] = 1
  t.equal(addressText(v6), '2001:db8::1')
  const mapped = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])
  t.equal(addressText(mapped), '10.0.0.1')
})
