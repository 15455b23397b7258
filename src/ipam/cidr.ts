import { Address4 } from 'ip-address'
import { formatIPv4 } from '../lib/addressing.js'

// The one place that does IPv4 address arithmetic (the CNI plugin's checks,
// which may load no package, use lib/addressing.ts). Text is parsed (and
// validated) by `ip-address`; ranges are unsigned 32-bit integers from then
// on, because subnet iteration and overlap tests are plain integer compares.

/** An IPv4 network: `base` is the network address as an unsigned 32-bit integer. */
export interface Cidr {
  base: number
  prefix: number
}

/** Parses a dotted-quad IPv4 address (no prefix); undefined when it is not one. */
export function parseIPv4(text: string): number | undefined {
  if (typeof text !== 'string' || text.includes('/') || !Address4.isValid(text)) return undefined
  return Number(new Address4(text).bigInt())
}

// the CNI plugin formats addresses too and loads no package: one formatter, in its leaf
export { formatIPv4 }

/**
 * Parses `a.b.c.d/n`. `reason` says what is wrong instead of throwing, so
 * callers can name the field. Host bits must be zero: `10.244.1.0/16` is
 * almost always a typo and silently masking it would hide the mistake.
 */
export function parseCidr(text: unknown): { cidr: Cidr } | { reason: string } {
  if (typeof text !== 'string') return { reason: 'must be a CIDR string like 10.244.0.0/16' }
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text)
  const ip = m?.[1] ? parseIPv4(m[1]) : undefined
  const prefix = Number(m?.[2])
  if (ip === undefined || !(prefix >= 0 && prefix <= 32))
    return { reason: `"${text}" is not an IPv4 CIDR like 10.244.0.0/16` }
  const base = (ip & mask(prefix)) >>> 0
  if (base !== ip)
    return { reason: `"${text}" has host bits set (the network is ${formatCidr({ base, prefix })})` }
  return { cidr: { base, prefix } }
}

/** parseCidr for values already known to be valid (our own output); throws otherwise. */
export function cidrOf(text: string): Cidr {
  const r = parseCidr(text)
  if ('reason' in r) throw new Error(r.reason)
  return r.cidr
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix)
}

/** Last address of the range (the broadcast address for prefixes below /31). */
export function lastAddress(c: Cidr): number {
  return c.base + size(c) - 1
}

export function containsAddress(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= lastAddress(c)
}

export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && containsAddress(outer, inner.base)
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= lastAddress(b) && b.base <= lastAddress(a)
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.base === b.base && a.prefix === b.prefix
}
