// bench/watchers (issue 14: "1,000 concurrent watchers on one agent; a write
// reaches all of them with p99 ≤ 200 ms"). One agent of a 1-host fixture holds
// WATCHERS watchers on its API, half Server-Sent Events streams of a prefix
// (`GET /v1/watch/bench/`) and half blocking reads (`GET /v1/kv/bench/key?index=`,
// asked again after each answer); the reference is etcd (Debian's
// etcd-server, one member) with as many watch streams through its HTTP
// gateway (`POST /v3/watch`). Rounds alternate Plexus, etcd, Plexus …: each
// writes a new value and times, for every watcher, the write to its delivery.
// The agent's RSS is read before the watchers, while they watch and after they
// are gone.
//
// The driver re-runs itself inside the fixture host's namespace (`--inner`),
// where the agent's socket and etcd on that namespace's loopback both are:
// nothing leaves the namespaces the bench made.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { Agent, type IncomingMessage, request } from 'node:http'
import { join } from 'node:path'
import { clusterDir } from '../netns-fixtures/lib/state.js'
import { upCluster } from '../test/helpers/fixture.js'
import { Deliveries } from './lib/deliveries.js'
import { b64 } from './lib/etcd.js'
import { runInner } from './lib/inner.js'
import { rssMb } from './lib/proc.js'
import { median, progress, quantile, report, round } from './lib/report.js'

const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 1000)
const ROUNDS = Number(process.env.BENCH_RUNS ?? 10)
const ETCD = 'http://127.0.0.1:23790'
const KEY = 'bench/key'

type Target = { socketPath: string } | { host: string; port: number }

/** blocking reads ask again on the connection they had, as Consul's clients do (keep-alive) */
const keepAlive = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY })

function call(
  to: Target,
  method: string,
  path: string,
  body?: unknown,
  agent: Agent | false = false,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      { ...to, method, path, agent, headers: payload ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

/** Opens a streaming request; each chunk of its body goes to onData. Resolves once the response has begun. */
function stream(
  to: Target,
  method: string,
  path: string,
  body: unknown,
  onData: (text: string) => void,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request({ ...to, method, path, agent: false }, (res) => {
      res.setEncoding('utf8')
      res.on('data', onData)
      resolve(res)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** the SSE streams report to sse, the blocking reads to blocking (half of the watchers each) */
async function plexusWatchers(
  sock: Target,
  sse: Deliveries,
  blocking: Deliveries,
  open: IncomingMessage[],
): Promise<void> {
  const half = Math.floor(WATCHERS / 2)
  for (let i = 0; i < half; i++) {
    let buf = ''
    open.push(
      await stream(sock, 'GET', '/v1/watch/bench/', undefined, (c) => {
        buf += c
        let end = buf.indexOf('\n\n')
        while (end >= 0) {
          const ev = buf.slice(0, end)
          buf = buf.slice(end + 2)
          const data = /^event: put\ndata: (.*)$/m.exec(ev)?.[1]
          if (data) sse.saw(String((JSON.parse(data) as { value: unknown }).value))
          end = buf.indexOf('\n\n')
        }
      }),
    )
  }
  // blocking reads: each asks again with the index of what it last saw
  const first = await call(sock, 'GET', `/v1/kv/${KEY}`)
  const start = Number(JSON.parse(first.text).modifyIndex)
  for (let i = half; i < WATCHERS; i++) {
    const loop = async (index: number): Promise<void> => {
      const r = await call(sock, 'GET', `/v1/kv/${KEY}?index=${index}&wait=5m`, undefined, keepAlive).catch(
        () => undefined,
      )
      if (r?.status !== 200) return
      const e = JSON.parse(r.text) as { value: unknown; modifyIndex: number }
      if (e.modifyIndex > index) blocking.saw(String(e.value))
      void loop(e.modifyIndex)
    }
    void loop(start)
  }
}

async function etcdWatchers(d: Deliveries, open: IncomingMessage[]): Promise<void> {
  const etcd = { host: '127.0.0.1', port: 23790 }
  for (let i = 0; i < WATCHERS; i++) {
    let buf = ''
    open.push(
      await stream(etcd, 'POST', '/v3/watch', { create_request: { key: b64(KEY) } }, (c) => {
        buf += c
        // the gateway streams one JSON object per message
        let nl = buf.indexOf('\n')
        while (nl >= 0) {
          const line = buf.slice(0, nl).trim()
          buf = buf.slice(nl + 1)
          if (line) {
            const events = (JSON.parse(line) as { result?: { events?: { kv?: { value?: string } }[] } })
              .result?.events
            for (const e of events ?? [])
              if (e.kv?.value) d.saw(Buffer.from(e.kv.value, 'base64').toString('utf8'))
          }
          nl = buf.indexOf('\n')
        }
      }),
    )
  }
}

async function inner(socketPath: string, agentPid: number): Promise<void> {
  const sock = { socketPath }
  const data = mkdtempSync('/tmp/plexus-bench-etcd-')
  const etcd: ChildProcess = spawn(
    'etcd',
    [
      '--data-dir',
      data,
      '--listen-client-urls',
      ETCD,
      '--advertise-client-urls',
      ETCD,
      '--listen-peer-urls',
      'http://127.0.0.1:23800',
    ],
    { stdio: 'ignore' },
  )
  const open: IncomingMessage[] = []
  try {
    await call(sock, 'PUT', `/v1/kv/${KEY}`, 'start')
    for (let i = 0; i < 100; i++) {
      const up = await call({ host: '127.0.0.1', port: 23790 }, 'POST', '/v3/kv/put', {
        key: b64(KEY),
        value: b64('start'),
      }).catch(() => undefined)
      if (up?.status === 200) break
      await new Promise((r) => setTimeout(r, 100))
    }
    const rssBefore = rssMb(agentPid)
    const half = Math.floor(WATCHERS / 2)
    const sse = new Deliveries(half)
    const blocking = new Deliveries(WATCHERS - half)
    const ed = new Deliveries(WATCHERS)
    await plexusWatchers(sock, sse, blocking, open)
    await etcdWatchers(ed, open)
    await new Promise((r) => setTimeout(r, 2000))
    const plexus: number[] = []
    const bySse: number[] = []
    const byBlocking: number[] = []
    const ref: number[] = []
    let lost = 0
    let etcdLost = 0
    for (let round = 0; round < ROUNDS; round++) {
      const v = `p${round}`
      const t0 = performance.now()
      await call(sock, 'PUT', `/v1/kv/${KEY}`, v)
      const [a, b] = await Promise.all([sse.seen(v, t0), blocking.seen(v, t0)])
      const got = [...a, ...b]
      lost += WATCHERS - got.length
      plexus.push(...got)
      bySse.push(...a)
      byBlocking.push(...b)
      const e = `e${round}`
      const t1 = performance.now()
      await call({ host: '127.0.0.1', port: 23790 }, 'POST', '/v3/kv/put', { key: b64(KEY), value: b64(e) })
      const egot = await ed.seen(e, t1)
      etcdLost += WATCHERS - egot.length
      ref.push(...egot)
      process.stderr.write(
        `  round ${round + 1}: plexus p99 ${quantile(got, 0.99).toFixed(1)} ms, etcd p99 ${quantile(egot, 0.99).toFixed(1)} ms\n`,
      )
    }
    const rssWatching = rssMb(agentPid)
    const etcdRss = etcd.pid ? rssMb(etcd.pid) : Number.NaN
    for (const r of open) r.destroy()
    await new Promise((r) => setTimeout(r, 3000))
    const rssAfter = rssMb(agentPid)
    process.stdout.write(
      `${JSON.stringify({ plexus, bySse, byBlocking, ref, lost, etcdLost, rssBefore, rssWatching, rssAfter, etcdRss })}\n`,
    )
    // the line must be out before the exit below ends the blocking reads still outstanding (a pipe writes later)
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
  } finally {
    etcd.kill('SIGKILL')
    rmSync(data, { recursive: true, force: true })
  }
  process.exit(0)
}

async function main(): Promise<void> {
  const cleanups: (() => unknown)[] = []
  try {
    progress('fixture: 1 host')
    // room for the watchers on the unix socket (one client: the bench) and within the total
    const c = upCluster(
      { teardown: (fn) => cleanups.push(fn) },
      { hosts: 1, prefix: 'bwa', agentConfig: { api: { maxConnections: 4096, maxPerClient: 4096 } } },
    )
    const dir = join(clusterDir(c.name), 'h1')
    const pid = Number(readFileSync(join(dir, 'plexusd.pid'), 'utf8').split(/\s+/)[0])
    progress(`${WATCHERS} watchers on the agent and on etcd, ${ROUNDS} writes each`)
    const r = runInner<{
      plexus: number[]
      bySse: number[]
      byBlocking: number[]
      ref: number[]
      lost: number
      etcdLost: number
      rssBefore: number
      rssWatching: number
      rssAfter: number
      etcdRss: number
    }>(c.name, 'h1', import.meta.url, [join(dir, 'run/plexusd.sock'), String(pid)])
    report('watchers', {
      runs: ROUNDS,
      watchers: WATCHERS,
      plexus_p50_ms: round(median(r.plexus), 2),
      plexus_p99_ms: round(quantile(r.plexus, 0.99), 2),
      plexus_sse_p99_ms: round(quantile(r.bySse, 0.99), 2),
      plexus_blocking_p99_ms: round(quantile(r.byBlocking, 0.99), 2),
      etcd_p50_ms: round(median(r.ref), 2),
      etcd_p99_ms: round(quantile(r.ref, 0.99), 2),
      p99_ratio: round(quantile(r.plexus, 0.99) / quantile(r.ref, 0.99), 3),
      lost: r.lost,
      etcd_lost: r.etcdLost,
      rss_before_mb: round(r.rssBefore, 1),
      rss_watching_mb: round(r.rssWatching, 1),
      rss_after_mb: round(r.rssAfter, 1),
      etcd_rss_mb: round(r.etcdRss, 1),
    })
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

if (process.argv[2] === '--inner') await inner(process.argv[3] as string, Number(process.argv[4]))
else
  await main().catch((err) => {
    progress(`bench/watchers failed: ${(err as Error).stack ?? err}`)
    process.exit(1)
  })
