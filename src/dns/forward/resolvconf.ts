import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { MAX_UPSTREAMS, type Upstream } from './forward.js'

/** nameserver lines of a resolv.conf text, in order, at most 3, without the addresses we listen on (no loops). */
export function parseResolvConf(text: string, exclude: string[] = []): Upstream[] {
  const out: Upstream[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    const host = m?.[1]?.replace(/%.*$/, '') // drop an IPv6 zone id
    if (!host || !isIP(host) || exclude.includes(host) || out.some((u) => u.host === host)) continue
    out.push({ host, port: 53 })
  }
  return out.slice(0, MAX_UPSTREAMS)
}

export function readResolvConf(path: string, exclude: string[] = []): Upstream[] {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'), exclude)
  } catch {
    return []
  }
}

/** "1.2.3.4", "1.2.3.4:5353", "[fd00::1]:53", "fd00::1" → Upstream (undefined if invalid). */
export function parseUpstream(s: string): Upstream | undefined {
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  const hp = /^([^:]+):(\d+)$/.exec(s)
  const host = br ? br[1]! : hp ? hp[1]! : s
  const port = Number(br ? (br[2] ?? 53) : hp ? hp[2] : 53)
  if (!isIP(host) || !Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { host, port }
}
