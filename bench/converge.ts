// bench/converge (contract: ../shared/BENCH.md). In namespaces, 10 hosts:
// time from a write on h1 until all 10 hosts hold it (100 writes; each host
// is watched with a blocking query, so the time is when its agent learned the
// key, not when a poll noticed), and time for a newly started host (fresh
// identity, empty store) to hold the full store; agent RSS and idle CPU. In the
// simulator, 1,000 hosts: simulated time for one write to reach every host.
//
// The reference (issue 20) is etcd, flannel's store: a 3-member cluster in
// h1-h3's namespaces with an etcdctl watcher in each of the 10 (bench/lib/etcd.ts).
// The writes alternate Plexus, etcd, Plexus …, timed the same way (write on h1
// until all 10 watchers have it), each once it runs (etcd with a leader, every
// agent with its subnet lease) and after a first key all its watchers saw: the
// run used to start before the agents held their leases, and its first writes,
// taken while ten agents programmed their datapaths on two cores, were its p99
// (0.5-1.6 s, against 60 ms after). The CPU seconds of each system's servers
// (10 agents; 3 members) over the whole loop are divided by its writes. The loop
// runs inside h1's namespace (`--inner`), the only place etcd's underlay
// addresses are reached from; the agents' sockets are reached from anywhere.
//
// The size run (issue 22 item 3, lib/converge-big.ts): 50,000 DNS-visible
// records written through 5 agents' APIs; RSS, a 6th host's join, a write until
// every host's DNS answers it, the agents' zone update time (fields big_*;
// big_write_p99_ratio against this run's write_p99_ms). BENCH_CONVERGE=small|big
// runs one part alone.
import '../src/lib/polyfill.js'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loadCluster } from '../netns-fixtures/lib/state.js'
import { runScenario } from '../src/cluster/sim/scenario.js'
import { BIG_WRITES, type BigWritesArgs, bigRun, bigWrites } from './lib/converge-big.js'
import { Deliveries } from './lib/deliveries.js'
import { b64, gateway, startEtcd, watchPrefix } from './lib/etcd.js'
import { agentPidsOf, allAlive, call, fixture, joinFromLog, sleep, until } from './lib/fixture.js'
import { runInner } from './lib/inner.js'
import { cpuSeconds, rssMb } from './lib/proc.js'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'

const HOSTS = 10
const WRITES = Number(process.env.BENCH_RUNS ?? 100)
const PRELOAD = 1000
const ETCD_MEMBERS = 3
/** how long the agents' idle CPU is sampled, after the writes and a pause */
const IDLE_MS = 10_000
const IDLE_SETTLE_MS = 5_000

/** what the outer run hands the loop inside h1's namespace */
interface LoopArgs {
  sockets: string[]
  namespaces: string[]
  endpoints: string[]
  agentPids: number[]
  etcdPids: number[]
}

interface LoopResult {
  plexusMs: number[]
  etcdMs: number[]
  etcdLost: number
  plexusCpuS: number
  etcdCpuS: number
}

/** A write on h1 until every host's agent holds it: exact-key blocking queries, each returns the moment its agent merges the key. */
async function plexusWrite(sockets: string[], key: string, value: unknown): Promise<number> {
  const [first] = sockets as [string]
  const watches = sockets.map((s) =>
    call(s, 'GET', `/v1/kv/${key}?index=1&wait=10s`, undefined, 15_000).then(() => performance.now()),
  )
  await sleep(5) // let the watches register
  const t0 = performance.now()
  await call(first, 'PUT', `/v1/kv/${key}`, value)
  const seen = await Promise.all(watches)
  return Math.max(...seen) - t0
}

/** Runs in h1's namespace: Plexus and etcd writes alternated, each timed to its 10 watchers. */
async function loop(a: LoopArgs): Promise<LoopResult> {
  const etcdSeen = new Deliveries(a.namespaces.length)
  const watchers = a.namespaces.map((ns, i) =>
    watchPrefix(ns, a.endpoints[i % a.endpoints.length] as string, 'bench/e/', (k) => etcdSeen.saw(k)),
  )
  const [endpoint] = a.endpoints as [string]
  try {
    // the members elect a leader and the watchers connect: a first key every watcher sees
    await until(
      'etcd takes a write and all watchers see it',
      async () => {
        const key = `bench/e/ready${Date.now()}`
        const t0 = performance.now()
        if (!(await gateway(endpoint, '/v3/kv/put', { key: b64(key), value: b64('1') }).catch(() => false)))
          return false
        return (await etcdSeen.seen(key, t0)).length === a.namespaces.length
      },
      60_000,
    )
    // the same for Plexus: a first key every host sees
    await plexusWrite(a.sockets, 'bench/ready', 1)
    const plexusMs: number[] = []
    const etcdMs: number[] = []
    let etcdLost = 0
    const cpu0 = [cpuSeconds(a.agentPids), cpuSeconds(a.etcdPids)] as const
    for (let i = 0; i < WRITES; i++) {
      plexusMs.push(await plexusWrite(a.sockets, `bench/w${i}`, { i }))
      const key = `bench/e/w${i}`
      const t0 = performance.now()
      await gateway(endpoint, '/v3/kv/put', { key: b64(key), value: b64(JSON.stringify({ i })) })
      const seen = await etcdSeen.seen(key, t0)
      if (seen.length < a.namespaces.length) etcdLost++
      else etcdMs.push(Math.max(...seen))
      if ((i + 1) % 25 === 0)
        process.stderr.write(
          `  ${i + 1} writes: plexus p50 ${median(plexusMs).toFixed(1)} ms, etcd p50 ${median(etcdMs).toFixed(1)} ms\n`,
        )
    }
    return {
      plexusMs,
      etcdMs,
      etcdLost,
      plexusCpuS: cpuSeconds(a.agentPids) - cpu0[0],
      etcdCpuS: cpuSeconds(a.etcdPids) - cpu0[1],
    }
  } finally {
    for (const w of watchers) w.kill('SIGKILL')
  }
}

type Fields = Record<string, number | string>

/** the 10-host run: writes beside etcd, idle CPU, a join at 1,100 records, RSS; the 1,000-host simulator */
async function smallRun(): Promise<Fields> {
  const name = `cv${process.pid.toString(36)}`.slice(0, 8)
  progress(`fixture ${name}: ${HOSTS} hosts`)
  try {
    // every host holds its subnet lease (its datapath is programmed next): the writes below time a
    // running cluster, as etcd's are timed once it has a leader, not ten agents starting on two cores
    fixture(['up', '--name', name, '--hosts', String(HOSTS)])
    const c = loadCluster(name)
    if (!c) throw new Error('fixture state missing')
    const sockets = c.hosts.map((h) => h.socket)
    const [first] = sockets as [string]
    await allAlive(sockets, HOSTS)

    const agentPids = agentPidsOf(name)

    progress(`etcd: ${ETCD_MEMBERS} members on h1-h${ETCD_MEMBERS}`)
    const etcd = startEtcd(c.hosts.slice(0, ETCD_MEMBERS), name)
    let r: LoopResult
    try {
      progress(`${WRITES} writes on h1 to each system, alternated, watched on all ${HOSTS} hosts`)
      const args: LoopArgs = {
        sockets,
        namespaces: c.hosts.map((h) => h.ns),
        endpoints: etcd.endpoints,
        agentPids,
        etcdPids: etcd.pids,
      }
      r = runInner<LoopResult>(name, 'h1', import.meta.url, [JSON.stringify(args)])
    } finally {
      etcd.stop()
    }

    // idle: nothing written for a while, etcd gone; what the agents spend on their own
    await sleep(IDLE_SETTLE_MS)
    const idle0 = agentPids.map((p) => cpuSeconds([p]))
    await sleep(IDLE_MS)
    const idlePct = agentPids.map(
      (p, i) => ((cpuSeconds([p]) - (idle0[i] as number)) / (IDLE_MS / 1000)) * 100,
    )
    progress(`idle CPU per agent (% of a core): ${idlePct.map((p) => p.toFixed(1)).join(' ')}`)

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
    const join_ = joinFromLog(readFileSync(join(joiner.dir, 'plexusd.log'), 'utf8'))

    // read again: the joiner is a new process
    const rssAll = agentPidsOf(name).map((p) => (p ? rssMb(p) : 0))
    const rss = Math.max(...rssAll)
    progress(`agent RSS per host (MB): ${rssAll.map((r) => Math.round(r)).join(' ')}`)

    progress('simulator: 1,000 hosts')
    const sim = await runScenario({ hosts: 1000, seed: 7 }, progress)

    return {
      runs: WRITES,
      hosts: HOSTS,
      write_p50_ms: round(median(r.plexusMs), 1),
      write_p99_ms: round(quantile(r.plexusMs, 0.99), 1),
      write_max_ms: round(Math.max(...r.plexusMs), 1),
      etcd_members: ETCD_MEMBERS,
      etcd_write_p50_ms: round(median(r.etcdMs), 1),
      etcd_write_p99_ms: round(quantile(r.etcdMs, 0.99), 1),
      etcd_lost: r.etcdLost,
      write_p50_ratio: round(median(r.plexusMs) / median(r.etcdMs), 3),
      write_p99_ratio: round(quantile(r.plexusMs, 0.99) / quantile(r.etcdMs, 0.99), 3),
      cpu_s_per_1000_writes: round((r.plexusCpuS / WRITES) * 1000, 2),
      etcd_cpu_s_per_1000_writes: round((r.etcdCpuS / WRITES) * 1000, 2),
      cpu_ratio: round(r.plexusCpuS / r.etcdCpuS, 3),
      idle_cpu_pct: round(Math.max(...idlePct), 2),
      idle_cpu_median_pct: round(median(idlePct), 2),
      join_ms: Math.round(join_.joinMs),
      join_after_listen_ms: Math.round(join_.afterListenMs),
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
    }
  } finally {
    progress('tearing down')
    try {
      fixture(['down', '--name', name])
    } catch (err) {
      progress(`down failed: ${(err as Error).message}`)
    }
  }
}

/**
 * BENCH_CONVERGE=small or big runs one of the two alone, its line kept in
 * bench/results/converge-<part>.json so the last whole run's converge.json stands; unset, both run
 * (each with its own fixture, one after the other), the JSON line holds every field and a part's
 * file, now older than it, goes.
 */
async function main(): Promise<void> {
  const only = process.env.BENCH_CONVERGE
  if (only !== undefined && only !== 'small' && only !== 'big')
    throw new Error(`BENCH_CONVERGE must be small or big, not "${only}"`)
  const small = only === 'big' ? undefined : await smallRun()
  const big = only === 'small' ? undefined : await bigRun(import.meta.url)
  const fields: Fields = { runs: small?.runs ?? BIG_WRITES, ...small, ...big }
  // issue 22: the size run's write p99 at most twice the small run's
  if (small && big) fields.big_write_p99_ratio = round(big.big_write_p99_ms / Number(small.write_p99_ms), 3)
  if (only) report('converge', fields, `converge-${only}`)
  else {
    report('converge', fields)
    for (const part of ['small', 'big'])
      rmSync(join(REPO, `bench/results/converge-${part}.json`), { force: true })
  }
}

if (process.argv[2] === '--inner') {
  const args = JSON.parse(process.argv[3] as string) as LoopArgs | BigWritesArgs
  const out = 'kind' in args ? await bigWrites(args) : await loop(args)
  process.stdout.write(`${JSON.stringify(out)}\n`)
} else
  await main().catch((err) => {
    progress(`bench/converge failed: ${(err as Error).stack}`)
    process.exitCode = 1
  })
