// Probes for the isolation tests: a UDP sender that can forge its IPv4
// source (raw socket) and a receiver that prints what arrives; an IPv6
// neighbour advertisement sender (any target) and a receiver that prints the
// targets of those that arrive. All python in the test's namespaces, so the
// test sees what the kernel delivered.
import { spawn } from 'node:child_process'

export const PORT = 9999

/** sends UDP to dst:PORT from the namespace, with a forged IPv4 source when src is given */
export const SEND = `
import socket, struct, sys
src, dst, payload = sys.argv[1], sys.argv[2], sys.argv[3].encode()
if src == '-':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(payload, (dst, ${PORT})); sys.exit(0)
udp = struct.pack('!HHHH', 40000, ${PORT}, 8 + len(payload), 0) + payload
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 0, 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, (dst, 0))
`

/** prints every datagram received on PORT, one per line, for ms */
const RECEIVE = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', ${PORT})); s.settimeout(0.1)
end = time.time() + float(sys.argv[1]) / 1000
print('ready', flush=True)
while time.time() < end:
    try: print(s.recvfrom(2048)[0].decode(), flush=True)
    except socket.timeout: pass
`

/**
 * sends a solicited, overriding neighbour advertisement (RFC 4861 4.4) to dst naming target, with
 * mac as its target link-layer address; the kernel fills in the checksum of a raw ICMPv6 socket
 */
export const SEND_NA = `
import socket, struct, sys
dst, target, mac = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(':', ''))
na = struct.pack('!BBHI16sBB6s', 136, 0, 0, 0x60000000, socket.inet_pton(socket.AF_INET6, target), 2, 1, mac)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.sendto(na, (dst, 0))
`

/** prints the target of every neighbour advertisement received, one per line, for ms */
export const RECEIVE_NA = `
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); s.settimeout(0.1)
end = time.time() + float(sys.argv[1]) / 1000
print('ready', flush=True)
while time.time() < end:
    try: m = s.recvfrom(2048)[0]
    except socket.timeout: continue
    if m[0] == 136: print(socket.inet_ntop(socket.AF_INET6, m[8:24]), flush=True)
`

/** a receiver (RECEIVE, or the script given) in ns for at most ms: `lines()` so far; `stop()` ends it */
export function receive(
  ns: string,
  ms: number,
  script = RECEIVE,
): { lines: () => string[]; stop: () => void } {
  const p = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', script, String(ms)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  return {
    lines: () => out.split('\n').filter(Boolean),
    stop: () => p.kill(),
  }
}
