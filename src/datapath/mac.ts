import { createHash } from 'node:crypto'

/**
 * A MAC address derived from a label: the same across restarts without any
 * state on disk. Locally administered unicast (first octet xxxxxx10).
 */
export function derivedMac(label: string): string {
  const h = createHash('sha256').update(label).digest()
  h[0] = ((h[0] ?? 0) & 0xfc) | 0x02
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':')
}

/**
 * The bridge's MAC (the containers' gateway). Set explicitly because a Linux
 * bridge whose address was never set takes the lowest MAC of its ports and
 * changes it as veths come and go: every container's neighbour entry for the
 * gateway then points at an address nobody answers to until it is probed
 * again, which cut DNS and routed traffic for 1–2 s after another container on
 * the host was added or deleted (bench/chaos). Docker sets its bridge's MAC for
 * the same reason.
 */
export const bridgeMac = (peerId: string): string => derivedMac(`plexus-bridge/${peerId}`)

/** a bridge network's bridge MAC on this host, for the same reason */
export const networkBridgeMac = (peerId: string, network: string): string =>
  derivedMac(`plexus-bridge/${peerId}/${network}`)
