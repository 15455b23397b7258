// The kernel's own round-trip time of the cluster's TCP connections, read
// through sock_diag (struct tcp_info). The kernel times segments against
// their ACKs, so no event-loop, stream or encryption delay is in the sample:
// the libp2p ping it replaces measured 4-11 ms between namespaces whose real
// round trip is well under 1 ms.
import {
  AF_INET,
  AF_INET6,
  addressText,
  dumpSockets,
  TCP_ESTABLISHED,
  tcpInfoRttMs,
} from '../lib/sock-diag.js'
import type { RttSample } from './membership.js'

/** Endpoint text as both sides print it: "ip:port" ("[ip6]:port" for IPv6). */
export const endpointText = (ip: string, port: number | string): string =>
  ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`

/** The RTT in ms of every established TCP connection of this namespace, by remote endpoint. */
export async function tcpRttByRemote(): Promise<Map<string, number>> {
  const sockets = await dumpSockets(
    [AF_INET, AF_INET6].map((family) => ({
      family,
      protocol: 'tcp' as const,
      states: 1 << TCP_ESTABLISHED,
      tcpInfo: true,
    })),
  )
  const out = new Map<string, number>()
  for (const s of sockets) {
    const rtt = s.tcpInfo ? tcpInfoRttMs(s.tcpInfo) : undefined
    if (rtt !== undefined) out.set(endpointText(addressText(s.dst), s.dport), rtt)
  }
  return out
}

/** What measureRtt needs of the transport. */
export interface RttTransport {
  remoteEndpoints(peer: string): string[]
  ping(peer: string, timeoutMs: number): Promise<number>
}

/**
 * A peer's round trip: the smallest kernel RTT of its connections, else (no
 * connection sampled yet, or no sock_diag in this kernel) a probe round trip
 * (probe.ts).
 */
export async function measureRtt(
  t: RttTransport,
  peer: string,
  timeoutMs: number,
  read: () => Promise<Map<string, number>> = tcpRttByRemote,
): Promise<RttSample> {
  const endpoints = t.remoteEndpoints(peer)
  if (endpoints.length > 0) {
    const rtts = await read().catch(() => new Map<string, number>())
    const kernel = endpoints.flatMap((e) => rtts.get(e) ?? [])
    if (kernel.length > 0) return { ms: Math.min(...kernel), by: 'kernel' }
  }
  return { ms: await t.ping(peer, timeoutMs), by: 'ping' }
}
