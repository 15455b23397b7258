// bench/conn-soak (contract: ../shared/BENCH.md; `make bench` runs it only with
// BENCH_LONG=1: it takes about 42 minutes). Issue 22: every cluster connection must release its cipher
// state. A 2-host fixture; from h2's namespace a plain libp2p node with the
// cluster key opens and closes CONN_SOAK_COUNT (default 10,000) connections
// to h1's agent, one after another, CONN_SOAK_RATE (default 4) a second: libp2p
// resets a sixth inbound connection within a second from one address, so 10,000 take
// about 42 minutes. Then: h1 still accepts a new connection,
// holds no cipher state for the closed ones (counter cluster.ciphers_live back
// to where it was), and its RSS and V8 heap return to where they started.
// heap_before/after_mb are the agent's heapUsed as it reports it, garbage not
// yet collected included (its old generation grows to twice its live size
// before a full collection); heap_gc_before/after_mb and rss_gc_* are read
// after a full collection, through the agent's inspector (SIGUSR1, then
// conn-soak-gc.ts in its namespace), in both cases after the other readings.
import '../src/lib/polyfill.js'
import { execFile, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { clusterDir, loadCluster } from '../netns-fixtures/lib/state.js'
import { createClient } from '../src/cli/client.js'
import { rssMb } from './lib/proc.js'
import { progress, REPO, report, round } from './lib/report.js'

const CLUSTER = join(REPO, 'netns-fixtures/cluster')
const DIALER = join(REPO, 'dist/bench/conn-soak-dialer.js')
const GC = join(REPO, 'dist/bench/conn-soak-gc.js')
const COUNT = Number(process.env.CONN_SOAK_COUNT ?? 10_000)
/** time for the agent to settle (timers, GC) before each memory reading */
const SETTLE_MS = 20_000

interface Status {
  memory: { rssBytes: number; heapUsedBytes: number }
  metrics: Record<string, number>
}

const fixture = (args: string[]) =>
  execFileSync(CLUSTER, args, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 }).toString()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mb = (b: number) => round(b / 2 ** 20, 1)

/**
 * CONN_SOAK_HEAP_SNAPSHOTS=1 (with NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2, which the fixture's agents
 * inherit): a heap snapshot of h1's agent before and after, in the current directory, to see what stays
 */
async function snapshot(pid: number): Promise<void> {
  if (!process.env.CONN_SOAK_HEAP_SNAPSHOTS) return
  // without the flag SIGUSR2 would end the agent
  if (!process.env.NODE_OPTIONS?.includes('--heapsnapshot-signal=SIGUSR2'))
    throw new Error('CONN_SOAK_HEAP_SNAPSHOTS needs NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2')
  process.kill(pid, 'SIGUSR2')
  await sleep(15_000)
}

async function main(): Promise<void> {
  const name = `cs${process.pid.toString(36)}`.slice(0, 8)
  progress(`fixture ${name}: 2 hosts`)
  try {
    fixture(['up', '--name', name, '--hosts', '2'])
    const c = loadCluster(name)
    if (!c) throw new Error('fixture state missing')
    const h1 = c.hosts[0] as (typeof c.hosts)[number]
    // the fixture's pid file is "PID START [WRAPPER WSTART]": the agent's pid comes first
    const pid = Number(readFileSync(join(h1.dir, 'plexusd.pid'), 'utf8').trim().split(/\s+/)[0])
    const key = join(clusterDir(name), 'cluster.key')
    const target = `/ip4/${h1.ip}/tcp/7373`
    const status = () => createClient(h1.socket).call<Status>('GET', '/v1/status')
    // asynchronous, so the RSS sampler below keeps running while the dialer works
    const dial = async (n: number) =>
      JSON.parse(
        (
          await promisify(execFile)(
            CLUSTER,
            ['exec', '--name', name, '--host', 'h2', '--', 'node', DIALER, key, target, String(n)],
            { maxBuffer: 1 << 24 },
          )
        ).stdout,
      ) as { connected: number; errors: Record<string, number>; dial_p50_ms: number; dial_p99_ms: number }

    // the agent's inspector, for the readings after a full collection (conn-soak-gc.ts)
    process.kill(pid, 'SIGUSR1')
    const collected = async (): Promise<{ rss: number; heapUsed: number } | undefined> => {
      try {
        const { stdout } = await promisify(execFile)(
          CLUSTER,
          ['exec', '--name', name, '--host', 'h1', '--', 'node', '--experimental-websocket', GC],
          { timeout: 60_000 },
        )
        return JSON.parse(stdout)
      } catch (err) {
        progress(`no reading after a full collection: ${(err as Error).message}`)
        return undefined
      }
    }
    // warm up: the first connections load code and fill caches that stay
    await dial(100)
    await sleep(SETTLE_MS)
    await snapshot(pid)
    const before = await status()
    const gcBefore = await collected()
    progress(`before: rss ${mb(before.memory.rssBytes)} MB, heap ${mb(before.memory.heapUsedBytes)} MB`)
    progress(`before, after a full collection: ${JSON.stringify(gcBefore)}`)
    let peak = 0
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(pid))
    }, 250)
    progress(`${COUNT} connections from h2 to h1`)
    const run = await dial(COUNT)
    clearInterval(sampler)
    progress(`dialer: ${JSON.stringify(run)}; settling ${SETTLE_MS / 1000} s`)
    await sleep(SETTLE_MS)
    await snapshot(pid)
    const after = await status()
    const gcAfter = await collected()
    progress(`after, after a full collection: ${JSON.stringify(gcAfter)}`)
    const again = await dial(1)
    const live = (s: Status) => s.metrics.plexus_cluster_ciphers ?? 0
    progress(`after: rss ${mb(after.memory.rssBytes)} MB, heap ${mb(after.memory.heapUsedBytes)} MB`)
    report('conn-soak', {
      runs: 1,
      connections: COUNT,
      connected: run.connected,
      failed: COUNT - run.connected,
      dial_p50_ms: run.dial_p50_ms,
      dial_p99_ms: run.dial_p99_ms,
      accepts_after: again.connected === 1,
      ciphers_live_before: live(before),
      ciphers_live_after: live(after),
      rss_before_mb: mb(before.memory.rssBytes),
      rss_peak_mb: round(peak, 1),
      rss_after_mb: mb(after.memory.rssBytes),
      heap_before_mb: mb(before.memory.heapUsedBytes),
      heap_after_mb: mb(after.memory.heapUsedBytes),
      // the same after a full collection (inspector): what the agent holds, without garbage waiting
      heap_gc_before_mb: gcBefore ? mb(gcBefore.heapUsed) : null,
      heap_gc_after_mb: gcAfter ? mb(gcAfter.heapUsed) : null,
      rss_gc_before_mb: gcBefore ? mb(gcBefore.rss) : null,
      rss_gc_after_mb: gcAfter ? mb(gcAfter.rss) : null,
      connection_errors: after.metrics.plexus_cluster_connection_errors_total ?? 0,
      stray_errors: after.metrics.plexus_cluster_stray_errors_total ?? 0,
    })
  } finally {
    progress('tearing down')
    fixture(['down', '--name', name])
  }
}

main().catch((err) => {
  progress(`conn-soak failed: ${(err as Error).stack ?? err}`)
  process.exitCode = 1
})
