// Byte encodings the netlink messages need. Address arithmetic (CIDRs,
// containment, overlap) lives in ../ipam/cidr.ts, the one place for it.

import { type Cidr, formatIPv4, parseCidr, parseIPv4 } from '../ipam/cidr.js'
import { PlexusError } from '../lib/errors.js'

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

export function ipToBuf(ip: string): Buffer {
  const n = parseIPv4(ip)
  if (n === undefined) throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', `not an IPv4 address: "${ip}"`)
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

export function bufToIp(b: Buffer): string {
  return formatIPv4(b.readUInt32BE(0))
}

/** parses a CIDR we are about to program; PLX_DATAPATH_BAD_ADDRESS when it is not one */
export function cidr(text: string): Cidr {
  const r = parseCidr(text)
  if ('reason' in r) throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', r.reason)
  return r.cidr
}

export function isMac(s: string): boolean {
  return MAC.test(s)
}

export function macToBuf(mac: string): Buffer {
  if (!MAC.test(mac))
    throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', `not a lower-case MAC address: "${mac}"`)
  return Buffer.from(mac.replaceAll(':', ''), 'hex')
}

export function bufToMac(b: Buffer): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
}
