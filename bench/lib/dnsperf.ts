// What bench/dns runs against each DNS server it compares, from a given network
// namespace: dnsperf with the same settings for every server, interleaved
// A B A B, and dnsmasq serving a hosts file as the reference.
//  - max throughput: dnsperf with 4 clients, 200 outstanding, `seconds` each;
//  - latency and loss at a fixed rate (per-query latencies from dnsperf -v).
import { execFileSync, spawn } from 'node:child_process'
import { progress, quantile } from './report.js'

export const FIXED_QPS = 20_000

/** a command in namespace ns, its stdout */
export function inNs(ns: string, cmd: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
}

/** A server under test: where dnsperf (run in `ns`) reaches it. */
export interface Target {
  side: string
  address: string
  port: number
}

export interface Load {
  /** the namespace dnsperf and dig run in */
  ns: string
  /** dnsperf's data file: one "name A" a line */
  namesFile: string
  seconds: number
}

function dnsperf(load: Load, t: Target, extra: string[]): string {
  // -b: 4 MB socket buffers on the load generator's side too; same settings for every server
  return inNs(load.ns, 'dnsperf', [
    '-b',
    '4096',
    '-s',
    t.address,
    '-p',
    String(t.port),
    '-d',
    load.namesFile,
    '-l',
    String(load.seconds),
    ...extra,
  ])
}

export function maxQps(load: Load, t: Target): number {
  const out = dnsperf(load, t, ['-c', '4', '-q', '200'])
  return Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1])
}

export interface Fixed {
  p50: number
  p99: number
  loss: number
}

export function fixedRate(load: Load, t: Target): Fixed {
  const out = dnsperf(load, t, ['-Q', String(FIXED_QPS), '-q', '1000', '-v'])
  const lat = [...out.matchAll(/^> NOERROR \S+ A ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000)
  const sent = Number(/Queries sent:\s+(\d+)/.exec(out)?.[1])
  const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1])
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), loss: lost / sent }
}

export interface Samples {
  qps: number[]
  fixed: Fixed[]
}

/** `runs` rounds of max qps for each target in turn, then the fixed rate for each in turn. */
export function interleaved(load: Load, targets: Target[], runs: number, label = ''): Map<string, Samples> {
  const s = new Map(targets.map((t) => [t.side, { qps: [], fixed: [] } as Samples]))
  const of = (t: Target) => s.get(t.side) as Samples
  for (let r = 0; r < runs; r++) {
    for (const t of targets) {
      of(t).qps.push(maxQps(load, t))
      progress(`${label}run ${r + 1}/${runs} ${t.side}: ${Math.round(of(t).qps.at(-1) as number)} qps`)
    }
    for (const t of targets) {
      const f = fixedRate(load, t)
      of(t).fixed.push(f)
      progress(
        `${label}run ${r + 1}/${runs} ${t.side} at ${FIXED_QPS} qps: p50 ${f.p50.toFixed(3)} ms p99 ${f.p99.toFixed(3)} ms loss ${f.loss}`,
      )
    }
  }
  return s
}

/**
 * The A answers of `names` from the server at t, asked from ns with one dig
 * process (batch mode), as name (no trailing dot) → addresses joined by ",".
 */
export function answers(ns: string, t: Target, names: string[]): Map<string, string> {
  const out = execFileSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'dig',
      `@${t.address}`,
      '-p',
      String(t.port),
      '+noall',
      '+answer',
      '+time=1',
      '+tries=2',
      '-f',
      '-',
    ],
    { input: names.map((n) => `${n} A\n`).join(''), encoding: 'utf8', maxBuffer: 64 << 20 },
  )
  const got = new Map<string, string[]>()
  for (const m of out.matchAll(/^(\S+)\.\s+\d+\s+IN\s+A\s+(\S+)$/gm)) {
    const name = (m[1] as string).toLowerCase()
    got.set(name, [...(got.get(name) ?? []), m[2] as string])
  }
  return new Map([...got].map(([n, a]) => [n, a.sort().join(',')]))
}

/**
 * dnsmasq answering the names of a hosts file (nothing else: no upstream, no
 * /etc/hosts) on address:port in ns; resolves with its pid once it answers `probe`.
 */
export async function startDnsmasq(
  ns: string,
  t: Target,
  hostsFile: string,
  probe: string,
  children: number[],
): Promise<number> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'dnsmasq',
      '-k',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hostsFile}`,
      `--port=${t.port}`,
      `--listen-address=${t.address}`,
      '--bind-interfaces',
      '--pid-file=',
      '--local-ttl=5',
      '--user=root',
    ],
    { stdio: 'ignore' },
  )
  children.push(p.pid as number)
  for (let i = 0; i < 50; i++) {
    try {
      if (
        inNs(ns, 'dig', [
          `@${t.address}`,
          '-p',
          String(t.port),
          '+short',
          '+time=1',
          '+tries=1',
          probe,
        ]).trim()
      )
        return p.pid as number
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`dnsmasq did not answer on ${t.address}:${t.port}`)
}
