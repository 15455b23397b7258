// bench/dns (contract: ../shared/BENCH.md): the Plexus DNS service against
// dnsmasq serving the same 1,000 names (dnsmasq from a hosts file), both on
// loopback ports inside one throwaway namespace, measured by dnsperf with the
// same settings, interleaved A B A B:
//  - max throughput: dnsperf with 4 clients, 200 outstanding, BENCH_SECONDS each;
//  - latency and loss at a fixed 20k qps (per-query latencies from dnsperf -v).
// The Plexus side is bench/dns-target.ts, run with the agent's runtime flags
// (lib/agent-runtime.ts): the agent's DnsService over a real
// LocalStore with 1,000 endpoints (no gossip; the answer path is what is measured).
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { agentRuntime } from './lib/agent-runtime.js'
import { rssMb } from './lib/proc.js'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const NAMES = 1000
const FIXED_QPS = 20_000
const PLEXUS_PORT = 5300
const DNSMASQ_PORT = 5302

const ns = `plxbench-${randomBytes(3).toString('hex')}`
const dir = mkdtempSync(join(tmpdir(), 'plexus-bench-dns-'))
const children: number[] = []

function teardown(): void {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
  } catch {
    // not created
  }
  rmSync(dir, { recursive: true, force: true })
}

function inNs(cmd: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
}

function address(i: number): string {
  return `10.244.${i >> 8}.${(i & 255) + 1 > 255 ? 1 : (i & 255) + 1}`
}

async function startPlexus(): Promise<number> {
  const runtime = agentRuntime()
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'env',
      ...runtime.env,
      process.execPath,
      ...runtime.nodeArgs,
      join(REPO, 'dist/bench/dns-target.js'),
      String(PLEXUS_PORT),
      String(NAMES),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  children.push(p.pid!)
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => d.toString().startsWith('ready') && resolve())
    p.on('exit', (c) => reject(new Error(`plexus dns target exited ${c}`)))
  })
  return p.pid!
}

async function startDnsmasq(hosts: string): Promise<number> {
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
      `--addn-hosts=${hosts}`,
      `--port=${DNSMASQ_PORT}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--pid-file=',
      '--local-ttl=5',
      '--user=root',
    ],
    { stdio: 'ignore' },
  )
  children.push(p.pid!)
  for (let i = 0; i < 50; i++) {
    try {
      if (
        inNs('dig', [
          '@127.0.0.1',
          '-p',
          String(DNSMASQ_PORT),
          '+short',
          '+time=1',
          '+tries=1',
          'c7.ctr.plexus.internal',
        ]).trim()
      )
        return p.pid!
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('dnsmasq did not answer')
}

function dnsperf(port: number, extra: string[]): string {
  // -b: 4 MB socket buffers on the load generator's side too; same settings for both servers
  return inNs('dnsperf', [
    '-b',
    '4096',
    '-s',
    '127.0.0.1',
    '-p',
    String(port),
    '-d',
    join(dir, 'names.txt'),
    '-l',
    String(SECONDS),
    ...extra,
  ])
}

function maxQps(port: number): number {
  const out = dnsperf(port, ['-c', '4', '-q', '200'])
  return Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1])
}

function fixedRate(port: number): { p50: number; p99: number; loss: number } {
  const out = dnsperf(port, ['-Q', String(FIXED_QPS), '-q', '1000', '-v'])
  const lat = [...out.matchAll(/^> NOERROR \S+ A ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000)
  const sent = Number(/Queries sent:\s+(\d+)/.exec(out)?.[1])
  const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1])
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), loss: lost / sent }
}

async function main(): Promise<void> {
  execFileSync('ip', ['netns', 'add', ns])
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  const names = Array.from({ length: NAMES }, (_, i) => `c${i}.ctr.plexus.internal`)
  writeFileSync(join(dir, 'names.txt'), names.map((n) => `${n} A\n`).join(''))
  writeFileSync(join(dir, 'hosts'), names.map((n, i) => `${address(i)} ${n}\n`).join(''))
  progress(`namespace ${ns}; plexus on :${PLEXUS_PORT}, dnsmasq on :${DNSMASQ_PORT}; ${NAMES} names`)
  const plexusPid = await startPlexus()
  await startDnsmasq(join(dir, 'hosts'))
  for (const n of ['c7.ctr.plexus.internal', 'c999.ctr.plexus.internal']) {
    const a = inNs('dig', ['@127.0.0.1', '-p', String(PLEXUS_PORT), '+short', n]).trim()
    const b = inNs('dig', ['@127.0.0.1', '-p', String(DNSMASQ_PORT), '+short', n]).trim()
    if (a !== b || !a) throw new Error(`the two servers disagree on ${n}: ${a} vs ${b}`)
  }
  const qps = { plexus: [] as number[], dnsmasq: [] as number[] }
  const fixed = {
    plexus: [] as ReturnType<typeof fixedRate>[],
    dnsmasq: [] as ReturnType<typeof fixedRate>[],
  }
  for (let r = 0; r < RUNS; r++) {
    for (const [side, port] of [
      ['plexus', PLEXUS_PORT],
      ['dnsmasq', DNSMASQ_PORT],
    ] as const) {
      qps[side].push(maxQps(port))
      progress(`run ${r + 1}/${RUNS} ${side}: ${Math.round(qps[side].at(-1)!)} qps`)
    }
    for (const [side, port] of [
      ['plexus', PLEXUS_PORT],
      ['dnsmasq', DNSMASQ_PORT],
    ] as const) {
      const f = fixedRate(port)
      fixed[side].push(f)
      progress(
        `run ${r + 1}/${RUNS} ${side} at ${FIXED_QPS} qps: p50 ${f.p50.toFixed(3)} ms p99 ${f.p99.toFixed(3)} ms loss ${f.loss}`,
      )
    }
  }
  const rss = rssMb(plexusPid)
  report('dns', {
    runs: RUNS,
    names: NAMES,
    plexus_qps: Math.round(median(qps.plexus)),
    dnsmasq_qps: Math.round(median(qps.dnsmasq)),
    qps_ratio: round(median(qps.plexus) / median(qps.dnsmasq)),
    p50_ms_at_20k: round(median(fixed.plexus.map((f) => f.p50))),
    p99_ms_at_20k: round(median(fixed.plexus.map((f) => f.p99))),
    loss: round(Math.max(...fixed.plexus.map((f) => f.loss)), 6),
    dnsmasq_p50_ms_at_20k: round(median(fixed.dnsmasq.map((f) => f.p50))),
    dnsmasq_p99_ms_at_20k: round(median(fixed.dnsmasq.map((f) => f.p99))),
    dnsmasq_loss: round(Math.max(...fixed.dnsmasq.map((f) => f.loss)), 6),
    rss_mb: round(rss, 1),
  })
}

process.on('SIGINT', () => {
  teardown()
  process.exit(130)
})
main()
  .catch((err: Error) => {
    progress(`bench/dns failed: ${err.message}`)
    process.exitCode = 1
  })
  .finally(teardown)
