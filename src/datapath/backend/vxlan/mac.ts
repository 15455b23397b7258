import { createHash } from 'node:crypto'

/**
 * The VTEP MAC of a host: derived from its peer id and the VNI, so it stays
 * the same across restarts (remote hosts' neighbour and FDB entries remain
 * right while this host restarts) without any state on disk. Locally
 * administered unicast (first octet xxxxxx10).
 */
export function vtepMac(peerId: string, vni: number): string {
  const h = createHash('sha256').update(`plexus-vtep/${peerId}/${vni}`).digest()
  h[0] = ((h[0] ?? 0) & 0xfc) | 0x02
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':')
}
