// bench/converge (contract: ../shared/BENCH.md). In namespaces, 10 hosts:
// time from a write on h1 until all 10 hosts hold it (100 writes; each host
// is watched with a blocking query, so the time is when its agent learned the
// key, not when a poll noticed), and time for a newly started host (fresh
// identity, empty store) to hold the full store; agent RSS. In the simulator,
// 1,000 hosts: simulated time for one write to reach every host.
import '../src/lib/polyfill.js'
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loadCluster } from '../netns-fixtures/lib/state.js'
import { createClient } from '../src/cli/client.js'
import { runScenario } from '../src/cluster/sim/scenario.js'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'

const CLUSTER = join(REPO, 'netns-fixtures/cluster')
const HOSTS = 10
const WRITES = 100
const PRELOAD = 1000

/** one JSON call to an agent (plexctl's client) */
const call = <T = unknown>(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs?: number,
) => createClient(socket).call<T>(method, path, body, { timeoutMs })

const fixture = (args: string[]) =>
  execFileSync(CLUSTER, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await sleep(20)
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}

async function main(): Promise<void> {
  const name = `cv${process.pid.toString(36)}`.slice(0, 8)
  progress(`fixture ${name}: ${HOSTS} hosts`)
  try {
    fixture(['up', '--name', name, '--hosts', String(HOSTS), '--no-wait-lease'])
    const c = loadCluster(name)
    if (!c) throw new Error('fixture state missing')
    const sockets = c.hosts.map((h) => h.socket)
    const [first] = sockets as [string]
    await until(
      'all hosts see each other',
      async () => {
        const r = await Promise.all(
          sockets.map((s) => call<{ hosts: { state: string }[] }>(s, 'GET', '/v1/hosts')),
        )
        return r.every((x) => x.hosts.filter((h) => h.state === 'alive').length === HOSTS)
      },
      60_000,
    )

    progress(`${WRITES} writes on h1, watched on all ${HOSTS} hosts`)
    const writeMs: number[] = []
    for (let i = 0; i < WRITES; i++) {
      const key = `bench/w${i}`
      // exact-key blocking queries: each returns the moment its agent merges the key
      const watches = sockets.map((s) =>
        call(s, 'GET', `/v1/kv/${key}?index=1&wait=10s`, undefined, 15_000).then(() => performance.now()),
      )
      await sleep(5) // let the watches register
      const t0 = performance.now()
      await call(first, 'PUT', `/v1/kv/${key}`, { i })
      const seen = await Promise.all(watches)
      writeMs.push(Math.max(...seen) - t0)
    }

    progress(`preload ${PRELOAD} keys, then a new host joins`)
    for (let i = 0; i < PRELOAD; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          call(first, 'PUT', `/v1/kv/bench/data/${i + j}`, { v: 'x'.repeat(100) }),
        ),
      )
    }
    const count = async (s: string) =>
      (await call<string[]>(s, 'GET', '/v1/kv/?keys')).filter((k) => k.startsWith('bench/')).length
    const want = await count(first)
    await until(
      'preload replicated',
      async () => (await Promise.all(sockets.map(count))).every((n) => n === want),
      60_000,
    )
    const joiner = c.hosts[HOSTS - 1] as (typeof c.hosts)[number]
    fixture(['stop', '--name', name, '--host', joiner.name])
    rmSync(join(joiner.dir, 'state'), { recursive: true, force: true }) // new identity, empty store
    const started = performance.now()
    fixture(['start', '--name', name, '--host', joiner.name])
    await until(
      'joiner holds the full store',
      async () => {
        try {
          return (await count(joiner.socket)) === want
        } catch {
          return false
        }
      },
      60_000,
    )
    const joinTotalMs = performance.now() - started
    // The agent's API opens only after every service has started, so the join
    // itself is read from its log: process start (first line) to the first full sync.
    const lines = readFileSync(join(joiner.dir, 'plexusd.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: string; msg: string; pid?: number })
    const boot = lines.findLast((l) => l.msg === 'store loaded')
    const synced = lines.findLast((l) => l.msg === 'initial sync complete')
    const clusterUp = lines.findLast((l) => l.msg === 'cluster started')
    if (!boot || !synced || !clusterUp)
      throw new Error('joiner log lacks store loaded / cluster started / initial sync complete')
    const joinMs = Date.parse(synced.time) - Date.parse(boot.time)
    const joinNetMs = Date.parse(synced.time) - Date.parse(clusterUp.time)

    const ls = JSON.parse(fixture(['ls', '--name', name, '-o', 'json'])) as {
      hosts: { agentPid: number | null }[]
    }
    const rssAll = ls.hosts.map((h) => (h.agentPid ? rssMb(h.agentPid) : 0))
    const rss = Math.max(...rssAll)
    progress(`agent RSS per host (MB): ${rssAll.map((r) => Math.round(r)).join(' ')}`)

    progress('simulator: 1,000 hosts')
    const sim = await runScenario({ hosts: 1000, seed: 7 }, progress)

    report('converge', {
      runs: WRITES,
      hosts: HOSTS,
      write_p50_ms: round(median(writeMs), 1),
      write_p99_ms: round(quantile(writeMs, 0.99), 1),
      write_max_ms: round(Math.max(...writeMs), 1),
      join_ms: Math.round(joinMs),
      join_after_listen_ms: Math.round(joinNetMs),
      join_total_ms: Math.round(joinTotalMs),
      join_records: want,
      sim_hosts: sim.hosts,
      sim_converge_s: sim.writeAllMs / 1000,
      sim_half_s: sim.writeHalfMs / 1000,
      sim_heal_s: sim.healMs / 1000,
      sim_heal_rounds: sim.healRounds,
      sim_violations: sim.violations.length,
      rss_mb: round(rss, 1),
      rss_median_mb: round(median(rssAll), 1),
    })
  } finally {
    progress('tearing down')
    try {
      fixture(['down', '--name', name])
    } catch (err) {
      progress(`down failed: ${(err as Error).message}`)
    }
  }
}

main().catch((err) => {
  progress(`bench/converge failed: ${(err as Error).stack}`)
  process.exitCode = 1
})
