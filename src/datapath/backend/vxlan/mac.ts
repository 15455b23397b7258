import { derivedMac } from '../../mac.js'

/**
 * The VTEP MAC of a host: derived from its peer id and the VNI, so it stays
 * the same across restarts (remote hosts' neighbour and FDB entries remain
 * right while this host restarts).
 */
export const vtepMac = (peerId: string, vni: number): string => derivedMac(`plexus-vtep/${peerId}/${vni}`)
