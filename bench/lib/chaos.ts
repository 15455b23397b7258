// Pure parts of bench/chaos: the seeded fault schedule (one seed, one run:
// a failure replays), the fuzz inputs, and the invariant checks on what the
// run read from the kernels and the agents.
import { seededRng } from '../../src/cluster/sim/clock.js'
import { formatCidr, mask, parseIPv4 } from '../../src/ipam/cidr.js'

export const FAULT_KINDS = ['kill', 'partition-one', 'partition-half', 'exhaust', 'churn'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export interface Fault {
  kind: FaultKind
  /** the hosts it hits (the cut-off side of a partition) */
  hosts: string[]
  /** how long the agent stays dead or the partition lasts (0: the fault has no duration of its own) */
  holdMs: number
  /** quiet time after the fault's end, before the next one */
  gapMs: number
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T
const between = (r: () => number, lo: number, hi: number) => Math.round(lo + r() * (hi - lo))

/**
 * The faults of a run, in order, enough for durationMs (pure): every kind
 * comes up, each on random hosts; the run executes them one after the
 * other until its time is up. Holds: an agent dead 1-20 s (a restart
 * inside the lease), one host cut off 10-90 s (past a 60 s lease: its
 * subnet may be reclaimed), half the hosts 10-40 s.
 */
export function schedule(seed: number, durationMs: number, hosts: string[]): Fault[] {
  const r = seededRng(seed)
  const out: Fault[] = []
  let planned = 0
  while (planned < durationMs) {
    const kind = pick(r, FAULT_KINDS)
    const shuffled = [...hosts].sort(() => r() - 0.5)
    const f: Fault =
      kind === 'kill'
        ? { kind, hosts: shuffled.slice(0, 1), holdMs: between(r, 1000, 20_000), gapMs: 0 }
        : kind === 'partition-one'
          ? { kind, hosts: shuffled.slice(0, 1), holdMs: between(r, 10_000, 90_000), gapMs: 0 }
          : kind === 'partition-half'
            ? {
                kind,
                hosts: shuffled.slice(0, Math.floor(hosts.length / 2)),
                holdMs: between(r, 10_000, 40_000),
                gapMs: 0,
              }
            : { kind, hosts: shuffled.slice(0, 1), holdMs: 0, gapMs: 0 }
    // quiet long enough to judge the heal (reachability back within 5 s)
    f.gapMs = between(r, 8000, 15_000)
    out.push(f)
    // a fault without a hold still takes time (container starts): count 15 s for it
    planned += (f.holdMs || 15_000) + f.gapMs
  }
  return out
}

/** A hostile input of one kind, from the run's random sequence (pure). */
export function fuzzBytes(r: () => number, max = 512): Buffer {
  const b = Buffer.alloc(between(r, 0, max))
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256)
  return b
}

/** one DNS query with random header bits, a random (sometimes malformed) name and type (pure) */
export function fuzzDnsQuery(r: () => number): Buffer {
  if (r() < 0.3) return fuzzBytes(r)
  const header = Buffer.alloc(12)
  header.writeUInt16BE(Math.floor(r() * 65536), 0)
  header.writeUInt16BE(Math.floor(r() * 65536) & (r() < 0.5 ? 0x7fff : 0xffff), 2)
  header.writeUInt16BE(between(r, 0, 3), 4)
  const labels: Buffer[] = []
  for (let i = between(r, 0, 6); i > 0; i--) {
    const len = r() < 0.1 ? between(r, 64, 255) : between(r, 0, 20)
    const l = Buffer.alloc(1 + Math.min(len, 63))
    l[0] = len
    for (let j = 1; j < l.length; j++) l[j] = 97 + Math.floor(r() * 26)
    labels.push(l)
  }
  const tail = Buffer.alloc(5)
  tail.writeUInt16BE(pick(r, [1, 5, 12, 16, 28, 33, 255, Math.floor(r() * 65536)]), 1)
  tail.writeUInt16BE(pick(r, [1, 3, 255]), 3)
  return Buffer.concat([header, ...labels, r() < 0.8 ? tail : fuzzBytes(r, 8)])
}

/** an API request that must be refused (bad JSON, deep JSON, long keys, odd methods) (pure) */
export function fuzzApiRequest(r: () => number): { method: string; path: string; body?: string } {
  const method = pick(r, ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'])
  const path = pick(r, [
    `/v1/kv/chaos/${'k'.repeat(between(r, 1, 2000))}`,
    `/v1/kv/${encodeURIComponent(fuzzBytes(r, 40).toString('latin1'))}`,
    '/v1/services',
    `/v1/services/${fuzzBytes(r, 10).toString('hex')}`,
    '/v1/links',
    `/v1/endpoints/${fuzzBytes(r, 8).toString('hex')}`,
    '/v1/jobs',
    '/v1/kv/chaos/x?index=abc&wait=-1s',
    `/${fuzzBytes(r, 30).toString('hex')}`,
  ])
  const depth = between(r, 1, 5000)
  const body = pick(r, [
    undefined,
    '{',
    '[]',
    '"x"',
    `${'['.repeat(depth)}${']'.repeat(depth)}`,
    JSON.stringify({ name: fuzzBytes(r, 300).toString('latin1'), port: -1 }),
    fuzzBytes(r).toString('latin1'),
  ])
  return body === undefined ? { method, path } : { method, path, body }
}

export interface HostKernel {
  host: string
  /** addresses (a.b.c.d/len) on its bridge */
  bridge: string[]
}
export interface CtrKernel {
  ctr: string
  host: string
  /** addresses (a.b.c.d/len) on its eth0 */
  addrs: string[]
}

/** the network of an interface address a.b.c.d/len */
const subnetOf = (addr: string) => {
  const [ip = '', len = '32'] = addr.split('/')
  const prefix = Number(len)
  return formatCidr({ base: ((parseIPv4(ip) ?? 0) & mask(prefix)) >>> 0, prefix })
}

/** containers whose host's bridge serves their subnet: the only ones with a way off their host (pure) */
export function liveContainers(hosts: HostKernel[], ctrs: CtrKernel[]): CtrKernel[] {
  const serves = new Map<string, Set<string>>()
  for (const h of hosts) serves.set(h.host, new Set(h.bridge.map(subnetOf)))
  return ctrs.filter((x) => x.addrs.some((a) => serves.get(x.host)?.has(subnetOf(a))))
}

/** the kernels' state: a subnet on two bridges, an address on two live containers (pure) */
export function kernelViolations(hosts: HostKernel[], ctrs: CtrKernel[]): string[] {
  const out: string[] = []
  const bridges = new Map<string, string>()
  for (const h of hosts)
    for (const a of h.bridge) {
      const s = subnetOf(a)
      const other = bridges.get(s)
      if (other && other !== h.host) out.push(`subnet ${s} on the bridges of ${other} and ${h.host}`)
      bridges.set(s, h.host)
    }
  const owner = new Map<string, string>()
  for (const x of liveContainers(hosts, ctrs))
    for (const a of x.addrs) {
      const ip = a.split('/')[0] as string
      const other = owner.get(ip)
      if (other) out.push(`${ip} on live containers ${other} and ${x.ctr}`)
      owner.set(ip, x.ctr)
    }
  return out
}

export interface EndpointRow {
  containerId: string
  ipv4: string
  withdrawn?: string
}

/** addresses every host's endpoint records serve (not withdrawn) for more than one container (pure) */
export function servedTwice(views: EndpointRow[][]): string[] {
  const by = new Map<string, Set<string>>()
  for (const rows of views)
    for (const e of rows) {
      if (e.withdrawn || parseIPv4(e.ipv4) === undefined) continue
      by.set(e.ipv4, (by.get(e.ipv4) ?? new Set()).add(e.containerId))
    }
  return [...by].filter(([, s]) => s.size > 1).map(([a]) => a)
}

/** RSS growth, MB per hour: the largest slope of one agent life over ≥ minSpanMs after its first minute (pure) */
export function rssGrowthPerHour(
  samples: { pid: number; t: number; mb: number }[],
  minSpanMs = 120_000,
): number {
  const lives = new Map<number, { t: number; mb: number }[]>()
  for (const s of samples) lives.set(s.pid, [...(lives.get(s.pid) ?? []), s])
  let worst = 0
  for (const life of lives.values()) {
    const start = (life[0]?.t ?? 0) + 60_000
    const warm = life.filter((s) => s.t >= start)
    const first = warm[0]
    const last = warm[warm.length - 1]
    if (!first || !last || last.t - first.t < minSpanMs) continue
    worst = Math.max(worst, ((last.mb - first.mb) / (last.t - first.t)) * 3_600_000)
  }
  return worst
}

/** what is there after the run that was not before, of the names the run made (pure) */
export function leaked(before: string[], after: string[], ours: (name: string) => boolean): string[] {
  const had = new Set(before)
  return after.filter((x) => !had.has(x) && ours(x))
}
