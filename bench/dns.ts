// bench/dns (contract: ../shared/BENCH.md): Plexus DNS against dnsmasq serving
// the same 1,000 names, measured by dnsperf with the same settings, interleaved
// A B A B (lib/dnsperf.ts): max throughput, and latency and loss at a fixed 20k qps.
// Two measurements in one run:
//  1. the DNS module alone: bench/dns-target.ts, run with the agent's runtime
//     flags (lib/agent-runtime.ts): the agent's DnsService over a real LocalStore
//     with 1,000 endpoints (no gossip; the answer path is what is measured), and
//     dnsmasq from a hosts file, both on loopback ports inside one throwaway
//     namespace (fields plexus_*, dnsmasq_*, qps_ratio, *_at_20k, loss, rss_mb);
//  2. a whole agent (issue 20 item 4, lib/dns-agent.ts): h1's plexusd in a 3-host
//     fixture holding 1,000 containers attached by CNI, asked from a container on
//     h1 at its bridge gateway, beside dnsmasq on the same address (fields agent_*).
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { agentRuntime } from './lib/agent-runtime.js'
import { agentDns, innerJob } from './lib/dns-agent.js'
import { type Fixed, inNs, interleaved, type Samples, startDnsmasq, type Target } from './lib/dnsperf.js'
import { rssMb } from './lib/proc.js'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const NAMES = 1000
const PLEXUS_PORT = 5300
const DNSMASQ_PORT = 5302

const INNER = process.argv[2] === '--inner'
const ns = `plxbench-${randomBytes(3).toString('hex')}`
const dir = INNER ? '' : mkdtempSync(join(tmpdir(), 'plexus-bench-dns-'))
const children: number[] = []
/** undo steps, run last first */
const undo: (() => void)[] = []

function teardown(): void {
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  for (const fn of undo.splice(0).reverse()) {
    try {
      fn()
    } catch (err) {
      progress(`teardown: ${(err as Error).message}`)
    }
  }
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

/** the DNS module alone against dnsmasq, on loopback in a throwaway namespace */
async function moduleAlone(): Promise<{ plexus: Samples; dnsmasq: Samples; rss: number }> {
  execFileSync('ip', ['netns', 'add', ns])
  undo.push(() => execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }))
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  const names = Array.from({ length: NAMES }, (_, i) => `c${i}.ctr.plexus.internal`)
  writeFileSync(join(dir, 'names.txt'), names.map((n) => `${n} A\n`).join(''))
  writeFileSync(join(dir, 'hosts'), names.map((n, i) => `${address(i)} ${n}\n`).join(''))
  progress(`namespace ${ns}; plexus on :${PLEXUS_PORT}, dnsmasq on :${DNSMASQ_PORT}; ${NAMES} names`)
  const plexusPid = await startPlexus()
  const plexus: Target = { side: 'plexus', address: '127.0.0.1', port: PLEXUS_PORT }
  const dnsmasq: Target = { side: 'dnsmasq', address: '127.0.0.1', port: DNSMASQ_PORT }
  await startDnsmasq(ns, dnsmasq, join(dir, 'hosts'), 'c7.ctr.plexus.internal', children)
  for (const n of ['c7.ctr.plexus.internal', 'c999.ctr.plexus.internal']) {
    const a = inNs(ns, 'dig', ['@127.0.0.1', '-p', String(PLEXUS_PORT), '+short', n]).trim()
    const b = inNs(ns, 'dig', ['@127.0.0.1', '-p', String(DNSMASQ_PORT), '+short', n]).trim()
    if (a !== b || !a) throw new Error(`the two servers disagree on ${n}: ${a} vs ${b}`)
  }
  const s = interleaved({ ns, namesFile: join(dir, 'names.txt'), seconds: SECONDS }, [plexus, dnsmasq], RUNS)
  const rss = rssMb(plexusPid)
  teardown()
  return { plexus: s.get('plexus') as Samples, dnsmasq: s.get('dnsmasq') as Samples, rss }
}

const fixedMedian = (s: Samples, f: keyof Fixed) => median(s.fixed.map((x) => x[f]))
const maxLoss = (s: Samples) => round(Math.max(...s.fixed.map((f) => f.loss)), 6)

async function main(): Promise<void> {
  const m = await moduleAlone()
  const a = await agentDns({
    names: NAMES,
    runs: RUNS,
    seconds: SECONDS,
    dir,
    ...(process.env.BENCH_DNS_PROFILE ? { profileDir: process.env.BENCH_DNS_PROFILE } : {}),
    scriptUrl: import.meta.url,
    atTeardown: (fn) => undo.push(fn),
    children,
  })
  progress('teardown')
  teardown()
  report('dns', {
    runs: RUNS,
    names: NAMES,
    plexus_qps: Math.round(median(m.plexus.qps)),
    dnsmasq_qps: Math.round(median(m.dnsmasq.qps)),
    qps_ratio: round(median(m.plexus.qps) / median(m.dnsmasq.qps)),
    p50_ms_at_20k: round(fixedMedian(m.plexus, 'p50')),
    p99_ms_at_20k: round(fixedMedian(m.plexus, 'p99')),
    loss: maxLoss(m.plexus),
    dnsmasq_p50_ms_at_20k: round(fixedMedian(m.dnsmasq, 'p50')),
    dnsmasq_p99_ms_at_20k: round(fixedMedian(m.dnsmasq, 'p99')),
    dnsmasq_loss: maxLoss(m.dnsmasq),
    rss_mb: round(m.rss, 1),
    agent_method: a.method,
    agent_qps: Math.round(median(a.agent.qps)),
    agent_dnsmasq_qps: Math.round(median(a.dnsmasq.qps)),
    agent_qps_ratio: round(median(a.agent.qps) / median(a.dnsmasq.qps)),
    agent_p50_ms_at_20k: round(fixedMedian(a.agent, 'p50')),
    agent_p99_ms_at_20k: round(fixedMedian(a.agent, 'p99')),
    agent_dnsmasq_p50_ms_at_20k: round(fixedMedian(a.dnsmasq, 'p50')),
    agent_dnsmasq_p99_ms_at_20k: round(fixedMedian(a.dnsmasq, 'p99')),
    agent_p99_ratio: round(fixedMedian(a.agent, 'p99') / fixedMedian(a.dnsmasq, 'p99')),
    agent_loss: maxLoss(a.agent),
    agent_dnsmasq_loss: maxLoss(a.dnsmasq),
    agent_zone_names: a.zoneNames,
    agent_rss_mb: round(a.rssMb, 1),
    agent_cpu_pct: round((100 * a.cpuS) / a.wallS, 1),
    agent_idle_cpu_pct: round(a.idleCpuPct, 1),
    agent_health_check_runs: a.checkRuns,
    agent_setup_add_s: round(a.adds.s, 1),
    agent_setup_add_p50_ms: Math.round(median(a.adds.ms)),
    agent_setup_add_p95_ms: Math.round(quantile(a.adds.ms, 0.95)),
    agent_setup_add_retries: a.adds.retries,
  })
}

if (INNER) {
  // in a fixture host's namespace: the CNI ADDs, or a profile, of lib/dns-agent.ts
  innerJob(process.argv[3] as string).catch((err: Error) => {
    progress(`bench/dns --inner failed: ${err.message}`)
    process.exit(1)
  })
} else {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      teardown()
      rmSync(dir, { recursive: true, force: true })
      process.exit(130)
    })
  main()
    .catch((err: Error) => {
      progress(`bench/dns failed: ${err.message}`)
      process.exitCode = 1
    })
    .finally(() => {
      teardown()
      rmSync(dir, { recursive: true, force: true })
    })
}
