// IPv4 and MAC helpers for the datapath: pure, strict, no dependencies.
import { PlexusError } from '../lib/errors.js'

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

export function isIPv4(s: string): boolean {
  return IPV4.test(s)
}

/** dotted quad → unsigned 32-bit integer */
export function ipToInt(ip: string): number {
  if (!IPV4.test(ip)) throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', `not an IPv4 address: "${ip}"`)
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0)
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

export function ipToBuf(ip: string): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(ipToInt(ip))
  return b
}

export function bufToIp(b: Buffer): string {
  return intToIp(b.readUInt32BE(0))
}

export interface Cidr {
  /** network address (host bits cleared) */
  ip: string
  prefix: number
}

/** parses "a.b.c.d/n"; strict: host bits must be zero */
export function parseCidr(s: string): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s)
  const prefix = m ? Number(m[2]) : Number.NaN
  if (!m?.[1] || !isIPv4(m[1]) || !(prefix >= 0 && prefix <= 32)) {
    throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', `not an IPv4 CIDR: "${s}"`)
  }
  const n = ipToInt(m[1])
  if ((n & ~mask(prefix)) >>> 0 !== 0) {
    throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', `CIDR "${s}" has host bits set`)
  }
  return { ip: m[1], prefix }
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

export function formatCidr(c: Cidr): string {
  return `${c.ip}/${c.prefix}`
}

export function cidrContains(c: Cidr, ip: string): boolean {
  return (ipToInt(ip) & mask(c.prefix)) >>> 0 === ipToInt(c.ip)
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix)
  return (ipToInt(a.ip) & mask(p)) >>> 0 === (ipToInt(b.ip) & mask(p)) >>> 0
}

/** the n-th address of a CIDR (0 = network address) */
export function nthAddress(c: Cidr, n: number): string {
  return intToIp((ipToInt(c.ip) + n) >>> 0)
}

export function isMac(s: string): boolean {
  return MAC.test(s)
}

export function macToBuf(mac: string): Buffer {
  if (!MAC.test(mac)) throw new PlexusError('PLX_DATAPATH_BAD_ADDRESS', `not a MAC address: "${mac}"`)
  return Buffer.from(mac.replaceAll(':', ''), 'hex')
}

export function bufToMac(b: Buffer): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
}
