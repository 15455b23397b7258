// bench/converge's size run (issue 22 item 3): 50,000 records on a 5-agent
// fixture. What a 1,000-host cluster holds is 1,000 hosts × about 50 endpoints
// and registrations; here the records are DNS-visible ones the consumers
// really process, written through the agents' APIs, not forged:
//
// - 10 real endpoints per host, attached through the agent's CNI route
//   (POST /v1/cni/add, what the plugin calls: veth, address, rules, record)
//   on namespaces made for them;
// - 10,000 API registrations per host (each endpoint in 1,000 services
//   svc0…svc999, port http 80/tcp, so A and SRV names), 50,000 in all, written
//   as KV PUTs of registration records (registrations/<own peer>/…) to each
//   agent's own socket, 16 keep-alive writers per host, the five hosts at
//   once, a 503 answered with Retry-After honoured (test/helpers/kv-burst.ts).
//   The KV route is the write path with the store's backpressure; the
//   registration route (PUT /v1/endpoints/:id/register) builds the whole
//   catalog for every call (ServiceRegistry.findEndpoint), which at this size
//   would make loading quadratic (read from the code, not measured here).
//
// Every record is owned by one of the 5 real agents, so the store holds 5 node
// records and 5 leases instead of 1,000 of each. That is acceptable for what is
// measured: memory, a joiner's full sync, gossip of a write and the DNS zone
// scale with the records held, and 2,000 node and lease records would be 4 % of
// 50,000; what 1,000 members cost the failure detector and the datapath (a
// route per host) is not measured here (the simulator and bench/overlay do).
//
// Measured: RSS of each agent once settled (big_rss_loaded_mb, max) and 65 s
// later (big_rss_mb: the load's garbage collected, the agents' memory release run six times;
// big_heap_mb: V8 heap in use then); a 6th host joining (fixture
// `join`, fresh identity): process start to its first full sync (from its log)
// and until its store holds every record; 50 writes of a new service name on
// h1 (a registration of h1's first endpoint), each timed from the write until
// every host's DNS server answers the name with the endpoint's address (UDP
// queries from h1's namespace to each host's DNS on its bridge gateway); and the
// agents' own zone update time during those writes, from their /metrics
// histogram plexus_dns_zone_update_seconds (kind="changes", all 5 agents).
//
// Run alone on a quiet machine (2026-12-05, load under 1 before) it completes in about 6
// minutes; on 2026-12-04, with other sessions' fixtures on the same 2 cores (load 12-21), every agent
// twice came to judge every other dead during the load and the run never completed.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadCluster } from '../../netns-fixtures/lib/state.js'
import { queryServer } from '../../src/dns/service.js'
import { registrationCodec } from '../../src/store/codecs.js'
import { kvBurst } from '../../test/helpers/kv-burst.js'
import {
  agentPidsOf,
  allAlive,
  call,
  fixture,
  joinFromLog,
  metricsText,
  seriesValue,
  sleep,
  until,
} from './fixture.js'
import { runInner } from './inner.js'
import { cpuSeconds, rssMb } from './proc.js'
import { median, progress, quantile, round } from './report.js'

const HOSTS = 5
const ENDPOINTS_PER_HOST = 10
const SERVICES = 1000
const WRITERS_PER_HOST = 16
export const BIG_WRITES = Number(process.env.BENCH_BIG_WRITES ?? 50)
/** settled: every agent under this share of a core over a window */
const SETTLED_CPU_PCT = 30
const SETTLE_WINDOW_MS = 5000
const SETTLE_MAX_MS = 240_000
const ZONE_METRIC = 'plexus_dns_zone_update_seconds'
/** RSS is read again this long after the agents settled */
const RSS_IDLE_MS = 65_000

/** what the outer run hands the write loop inside h1's namespace */
export interface BigWritesArgs {
  kind: 'big-writes'
  socket: string
  owner: string
  endpointKey: string
  containerId: string
  ip: string
  /** each host's DNS server (its bridge gateway) */
  servers: string[]
  writes: number
}

/** a registration of one endpoint in one service, as the registry would write it */
const registration = (owner: string, containerId: string, service: string, endpointKey: string) => ({
  key: `registrations/${owner}/${containerId}/eth0/${service}`,
  value: registrationCodec.encode({
    service,
    endpointKey,
    tags: [],
    ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
  }),
})

/** Runs in h1's namespace: each write until every host's DNS answers the new name with the address. */
export async function bigWrites(a: BigWritesArgs): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < a.writes; i++) {
    const service = `bigw${i}`
    const name = `${service}.svc.plexus.internal`
    const r = registration(a.owner, a.containerId, service, a.endpointKey)
    const t0 = performance.now()
    await call(a.socket, 'PUT', `/v1/kv/${r.key}`, r.value)
    const seen = await Promise.all(
      a.servers.map(async (server) => {
        for (;;) {
          const ans = await queryServer(server, 53, name, 'A', 1000).catch(() => undefined)
          if (ans?.answers.some((x) => 'data' in x && x.data === a.ip)) return performance.now()
          if (performance.now() - t0 > 30_000) throw new Error(`${server} never answered ${name}`)
          await sleep(5)
        }
      }),
    )
    out.push(Math.max(...seen) - t0)
    if ((i + 1) % 10 === 0) progress(`  big: ${i + 1} writes, p50 ${median(out).toFixed(1)} ms`)
  }
  return out
}

/** the zone update histogram (kind="changes") of one agent: cumulative counts by bound, sum, count */
interface Histo {
  buckets: Map<number, number>
  sum: number
  count: number
}

function zoneHisto(text: string): Histo {
  const buckets = new Map<number, number>()
  for (const m of text.matchAll(
    new RegExp(`^${ZONE_METRIC}_bucket\\{le="([^"]+)",kind="changes"\\} (\\S+)$`, 'gm'),
  ))
    buckets.set(m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2]))
  return {
    buckets,
    sum: seriesValue(text, `${ZONE_METRIC}_sum`, { kind: 'changes' }) || 0,
    count: seriesValue(text, `${ZONE_METRIC}_count`, { kind: 'changes' }) || 0,
  }
}

/** after − before, summed over agents */
function histoDelta(before: Histo[], after: Histo[]): Histo {
  const out: Histo = { buckets: new Map(), sum: 0, count: 0 }
  after.forEach((a, i) => {
    const b = before[i] as Histo
    out.sum += a.sum - b.sum
    out.count += a.count - b.count
    for (const [le, n] of a.buckets)
      out.buckets.set(le, (out.buckets.get(le) ?? 0) + n - (b.buckets.get(le) ?? 0))
  })
  return out
}

/** Prometheus' histogram_quantile: linear within the bucket that holds the q-th observation */
function histoQuantile(h: Histo, q: number): number {
  const bounds = [...h.buckets.keys()].sort((x, y) => x - y)
  const rank = q * h.count
  let prevBound = 0
  let prevCount = 0
  for (const le of bounds) {
    const n = h.buckets.get(le) as number
    if (n >= rank && n > prevCount) {
      if (!Number.isFinite(le)) return prevBound
      return prevBound + ((le - prevBound) * (rank - prevCount)) / (n - prevCount)
    }
    prevBound = le
    prevCount = n
  }
  return Number.NaN
}

/** the upper bound of the highest bucket any update fell in (a histogram keeps no maximum) */
function histoMaxBound(h: Histo): number {
  const bounds = [...h.buckets.keys()].sort((x, y) => x - y)
  let prev = 0
  for (const le of bounds) {
    if ((h.buckets.get(le) as number) >= h.count) return Number.isFinite(le) ? le : prev
    prev = le
  }
  return Number.NaN
}

/** registrations socket's agent lists, once it sees `hosts` hosts alive (else -1) */
async function heldRegistrations(socket: string, hosts: number): Promise<number> {
  const { hosts: seen } = await call<{ hosts: { state: string }[] }>(socket, 'GET', '/v1/hosts')
  if (seen.filter((h) => h.state === 'alive').length < hosts) return -1
  return (await call<string[]>(socket, 'GET', '/v1/kv/registrations/?keys', undefined, 60_000)).length
}

const liveRecords = async (socket: string) =>
  seriesValue(await metricsText(socket), 'plexus_store_records', { state: 'live' })

interface LocalEndpoint {
  key: string
  owner: string
  containerId: string
  ipv4: string
}

/** ENDPOINTS_PER_HOST endpoints on a host through its CNI route, each in a namespace of its own */
async function attach(socket: string, nsPrefix: string): Promise<LocalEndpoint[]> {
  for (let j = 0; j < ENDPOINTS_PER_HOST; j++) {
    const ns = `${nsPrefix}${j}`
    execFileSync('ip', ['netns', 'add', ns])
    const body = {
      containerId: `${ns}-0000000000000000`,
      ifname: 'eth0',
      netns: `/run/netns/${ns}`,
      network: 'plexus',
      name: ns,
      labels: {},
    }
    for (let tries = 0; ; tries++) {
      try {
        await call(socket, 'POST', '/v1/cni/add', body, 60_000)
        break
      } catch (err) {
        if (tries >= 10) throw err
        await sleep(1000) // "try again later" while the datapath catches up
      }
    }
  }
  const { endpoints } = await call<{ endpoints: (LocalEndpoint & { local: boolean })[] }>(
    socket,
    'GET',
    '/v1/endpoints',
  )
  return endpoints.filter((e) => e.local)
}

/** the size run; `scriptUrl` is bench/converge's, run again in h1's namespace for the DNS timing */
export async function bigRun(
  scriptUrl: string,
): Promise<Record<string, number> & { big_write_p99_ms: number }> {
  const name = `cb${process.pid.toString(36)}`.slice(0, 8)
  const nsOf = (h: number) => `${name}-e${h}-`
  progress(`big: fixture ${name}: ${HOSTS} hosts`)
  try {
    fixture(['up', '--name', name, '--hosts', String(HOSTS), '--wait', '180'])
    const c = loadCluster(name)
    if (!c) throw new Error('fixture state missing')
    const sockets = c.hosts.map((h) => h.socket)
    const [h1] = sockets as [string]
    await allAlive(sockets, HOSTS)

    progress(`big: ${ENDPOINTS_PER_HOST} endpoints per host through the CNI route`)
    const eps = await Promise.all(sockets.map((s, h) => attach(s, nsOf(h))))

    const perHost = ENDPOINTS_PER_HOST * SERVICES
    progress(
      `big: ${perHost * HOSTS} registrations (${perHost} per host, ${WRITERS_PER_HOST} writers each, all hosts at once)`,
    )
    const t0 = performance.now()
    const bursts = await Promise.all(
      sockets.map((s, h) => {
        const mine = eps[h] as LocalEndpoint[]
        return kvBurst(s, {
          count: perHost,
          concurrency: WRITERS_PER_HOST,
          prefix: '',
          entry: (i) => {
            const e = mine[i % mine.length] as LocalEndpoint
            return registration(e.owner, e.containerId, `svc${Math.floor(i / mine.length)}`, e.key)
          },
        })
      }),
    )
    const loadS = (performance.now() - t0) / 1000
    const refused = bursts.reduce((n, b) => n + b.refused, 0)
    const failures = bursts.flatMap((b) => Object.entries(b.failures))
    if (failures.length) throw new Error(`writes failed: ${JSON.stringify(failures)}`)
    progress(`big: written in ${loadS.toFixed(0)} s, ${refused} answered 503 and retried after Retry-After`)

    // a host judged dead has its records hidden (counted dead): every host must see every other alive
    // and list every registration, then h1's live count is the whole store
    const registrations = perHost * HOSTS
    await until(
      `every host sees ${HOSTS} alive and lists ${registrations} registrations`,
      async () => {
        const r = await Promise.all(sockets.map((s) => heldRegistrations(s, HOSTS).catch(() => -1)))
        progress(`big: registrations listed per host (-1: not every host alive): ${r.join(' ')}`)
        return r.every((n) => n === registrations)
      },
      900_000,
      10_000,
    )
    const want = await liveRecords(h1)
    const replicatedS = (performance.now() - t0) / 1000
    // every host's DNS serves the last service with all its members
    const last = `svc${SERVICES - 1}.svc.plexus.internal`
    await until(
      `every host's DNS answers ${last} with ${HOSTS * ENDPOINTS_PER_HOST} addresses`,
      async () =>
        (
          await Promise.all(
            sockets.map((s) =>
              call<{ answers: unknown[] }>(s, 'GET', `/v1/dns/query?name=${last}`).catch(() => ({
                answers: [],
              })),
            ),
          )
        ).every((a) => a.answers.length === HOSTS * ENDPOINTS_PER_HOST),
      300_000,
      1000,
    )
    const dnsS = (performance.now() - t0) / 1000
    progress(
      `big: all hosts hold ${want} records after ${replicatedS.toFixed(0)} s, DNS after ${dnsS.toFixed(0)} s`,
    )

    const pids = agentPidsOf(name)
    let busiest = Number.POSITIVE_INFINITY
    const settleEnd = Date.now() + SETTLE_MAX_MS
    while (busiest >= SETTLED_CPU_PCT && Date.now() < settleEnd) {
      const c0 = pids.map((p) => cpuSeconds([p]))
      await sleep(SETTLE_WINDOW_MS)
      busiest = Math.max(
        ...pids.map((p, i) => (100 * (cpuSeconds([p]) - (c0[i] as number))) / (SETTLE_WINDOW_MS / 1000)),
      )
      progress(`big: busiest agent at ${busiest.toFixed(1)} % of a core`)
    }
    const rssLoaded = pids.map((p) => (p ? rssMb(p) : 0))
    progress(`big: agent RSS per host once settled (MB): ${rssLoaded.map((r) => Math.round(r)).join(' ')}`)
    // what an operator sees while the cluster runs: after the load's garbage is collected and the
    // agents' memory release (every 10 s, src/lib/memory-release.ts; every 30 s before 2026-12-06)
    // has run six times
    await sleep(RSS_IDLE_MS)
    const rssAll = pids.map((p) => (p ? rssMb(p) : 0))
    const heapAll = (await Promise.all(sockets.map(metricsText))).map(
      (t) => seriesValue(t, 'nodejs_heap_size_used_bytes') / 2 ** 20,
    )
    progress(
      `big: ${RSS_IDLE_MS / 1000} s later, RSS (MB): ${rssAll.map((r) => Math.round(r)).join(' ')}, ` +
        `heap used (MB): ${heapAll.map((r) => Math.round(r)).join(' ')}`,
    )

    // writes of new names on h1 → every host's DNS
    const status = await Promise.all(
      sockets.map((s) => call<{ listening: { address: string }[] }>(s, 'GET', '/v1/dns')),
    )
    const servers = status.map((st, h) => {
      const gw = st.listening.find((l) => l.address.startsWith('10.'))?.address
      if (!gw) throw new Error(`h${h + 1}'s DNS does not listen on its gateway`)
      return gw
    })
    const e0 = (eps[0] as LocalEndpoint[])[0] as LocalEndpoint
    const before = (await Promise.all(sockets.map(metricsText))).map(zoneHisto)
    progress(
      `big: ${BIG_WRITES} writes of new service names on h1, until each host's DNS (${servers.join(' ')}) answers`,
    )
    const args: BigWritesArgs = {
      kind: 'big-writes',
      socket: h1,
      owner: e0.owner,
      endpointKey: e0.key,
      containerId: e0.key.split('/')[2] as string,
      ip: e0.ipv4,
      servers,
      writes: BIG_WRITES,
    }
    const writeMs = runInner<number[]>(name, 'h1', scriptUrl, [JSON.stringify(args)])
    const zone = histoDelta(before, (await Promise.all(sockets.map(metricsText))).map(zoneHisto))
    progress(
      `big: writes p50 ${median(writeMs).toFixed(1)} ms, p99 ${quantile(writeMs, 0.99).toFixed(1)} ms; ` +
        `${zone.count} zone updates, mean ${((zone.sum / zone.count) * 1000).toFixed(1)} ms`,
    )

    const wantNow = await liveRecords(h1)
    progress(`big: a 6th host joins (${wantNow} records to sync)`)
    const joinT0 = performance.now()
    fixture(['join', '--name', name, '--no-wait-lease', '--wait', '180'])
    const joiner = loadCluster(name)?.hosts[HOSTS]
    if (!joiner) throw new Error('the joiner is missing from the fixture state')
    await until(
      'the joiner holds every record',
      async () => (await liveRecords(joiner.socket).catch(() => 0)) >= wantNow,
      300_000,
      100,
    )
    // and they are visible: it sees the others alive (a dead host's records are hidden)
    const allRegs = registrations + BIG_WRITES
    await until(
      `the joiner sees ${HOSTS + 1} alive and lists ${allRegs} registrations`,
      async () => (await heldRegistrations(joiner.socket, HOSTS + 1).catch(() => -1)) === allRegs,
      300_000,
      1000,
    )
    const joinTotalMs = performance.now() - joinT0
    // the store can fill from the others' digest exchanges (they push what it lacks) before its own
    // first connect pull ends, which logs the line its join time is read from
    const joinerLog = () => readFileSync(join(joiner.dir, 'plexusd.log'), 'utf8')
    await until(
      'the joiner logs its first full sync',
      async () => joinerLog().includes('"initial sync complete"'),
      120_000,
      200,
    )
    const j = joinFromLog(joinerLog())
    const joinerRss = rssMb(agentPidsOf(name)[HOSTS] as number)
    progress(
      `big: joiner: first full sync ${j.joinMs} ms after its start, every record after ${Math.round(joinTotalMs)} ms from \`join\``,
    )

    return {
      big_hosts: HOSTS,
      big_records: want,
      big_registrations: perHost * HOSTS,
      big_endpoints: ENDPOINTS_PER_HOST * HOSTS,
      big_load_s: round(loadS, 1),
      big_load_refused: refused,
      big_replicated_s: round(replicatedS, 1),
      big_rss_mb: round(Math.max(...rssAll), 1),
      big_rss_median_mb: round(median(rssAll), 1),
      big_rss_loaded_mb: round(Math.max(...rssLoaded), 1),
      big_heap_mb: round(Math.max(...heapAll), 1),
      big_settled_cpu_pct: round(busiest, 1),
      big_join_ms: j.joinMs,
      big_join_after_listen_ms: j.afterListenMs,
      big_join_total_ms: Math.round(joinTotalMs),
      big_join_records: wantNow,
      big_joiner_rss_mb: round(joinerRss, 1),
      big_writes: writeMs.length,
      big_write_p50_ms: round(median(writeMs), 1),
      big_write_p99_ms: round(quantile(writeMs, 0.99), 1),
      big_write_max_ms: round(Math.max(...writeMs), 1),
      big_zone_updates: zone.count,
      big_zone_rebuild_ms: round(histoQuantile(zone, 0.99) * 1000, 1),
      big_zone_rebuild_p50_ms: round(histoQuantile(zone, 0.5) * 1000, 1),
      big_zone_rebuild_mean_ms: round((zone.sum / zone.count) * 1000, 1),
      big_zone_rebuild_max_bucket_ms: round(histoMaxBound(zone) * 1000, 1),
    }
  } finally {
    progress('big: tearing down')
    try {
      fixture(['down', '--name', name])
    } catch (err) {
      progress(`big: down failed: ${(err as Error).message}`)
    }
    const mine = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] as string)
      .filter((n) => n.startsWith(`${name}-e`))
    if (mine.length)
      execFileSync('ip', ['-force', '-batch', '-'], {
        input: mine.map((n) => `netns del ${n}\n`).join(''),
        stdio: ['pipe', 'ignore', 'ignore'],
      })
  }
}
