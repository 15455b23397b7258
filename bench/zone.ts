// bench/zone: the DNS zone at the size of a 1,000-host cluster (issue 22 item 3).
// One process, no namespaces: a real store (LocalStore, signed records merged
// from 1,000 host identities, values built through the store codecs) holding
// 50,000 records, and the agent's DnsService over it on 127.0.0.1. Measures
// the full zone build, one update after a single endpoint change, and, while
// records churn and queries are answered, the longest event-loop block
// (perf_hooks monitorEventLoopDelay) and the slowest answer.
// Env: ZONE_HOSTS (1000), ZONE_CHURN_S (10).
import '../src/lib/polyfill.js'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createSigner, verifyRecordSignature } from '../src/cluster/identity.js'
import { queryServer } from '../src/dns/service.js'
import {
  endpointCodec,
  healthCodec,
  leaseCodec,
  nodeCodec,
  registrationCodec,
  serviceCodec,
} from '../src/store/codecs.js'
import type { EndpointValue } from '../src/store/records.js'
import { LocalStore, type RecordSigner } from '../src/store/store.js'
import { localDns } from './lib/local-dns.js'
import { median, progress, quantile, report, round } from './lib/report.js'

const HOSTS = Number(process.env.ZONE_HOSTS ?? 1000)
const CHURN_S = Number(process.env.ZONE_CHURN_S ?? 10)
/** per host: 1 node + 1 lease + 24 endpoints + 12 registrations + 12 health = 50 records */
const ENDPOINTS = 24
const REGISTRATIONS = 12
const SERVICES = 50
// the asking thread shares the process, so the pid names the same port there
const PORT = 5353 + (process.pid % 1000)

interface Host {
  index: number
  signer: RecordSigner
  store: LocalStore
}

const subnet = (h: number): string => `10.${100 + (h >> 8)}.${h & 255}`
const epKey = (host: Host, i: number): string => `endpoints/${host.signer.self}/c${host.index}x${i}/eth0`

function endpointValue(h: number, i: number, extra: Partial<EndpointValue> = {}): EndpointValue {
  return {
    containerId: `c${h}x${i}`,
    ifname: 'eth0',
    name: `c${h}x${i}`,
    host: `h${h}`,
    ipv4: `${subnet(h)}.${i + 2}`,
    mac: '02:00:00:00:00:01',
    netns: `/run/netns/c${h}x${i}`,
    hostVeth: `plx${h}x${i}`,
    service: `svc${(h * ENDPOINTS + i) % SERVICES}`,
    labels: {},
    createdAt: new Date().toISOString(),
    ...extra,
  }
}

/** one host's own records, written by its own identity (the store checks owners and signatures) */
async function fillHost(host: Host): Promise<void> {
  const { signer, store, index: h } = host
  const put = (key: string, value: unknown) => store.put(key, value as never)
  await put(
    `nodes/${signer.self}`,
    nodeCodec.encode({ name: `h${h}`, address: `192.0.${h >> 8}.${h & 255}` }),
  )
  await put(
    `leases/${signer.self}`,
    leaseCodec.encode({
      subnet: `${subnet(h)}.0/24`,
      publicIp: `192.0.${h >> 8}.${h & 255}`,
      hostname: `h${h}`,
      backend: { type: 'vxlan', vni: 1 },
      claimedAt: Date.now(),
    }),
  )
  for (let i = 0; i < ENDPOINTS; i++) await put(epKey(host, i), endpointCodec.encode(endpointValue(h, i)))
  for (let i = 0; i < REGISTRATIONS; i++) {
    const service = `api${i % 10}`
    await put(
      `registrations/${signer.self}/c${h}x${i}/eth0/${service}`,
      registrationCodec.encode({
        service,
        endpointKey: epKey(host, i),
        tags: [`t${i % 3}`],
        ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
        checks: [{ name: 'ready', type: 'tcp', port: 8080, intervalMs: 1000, timeoutMs: 500, failures: 1 }],
      }),
    )
    await put(
      `health/${signer.self}/c${h}x${i}-ready`,
      healthCodec.encode({
        endpointKey: epKey(host, i),
        service,
        check: 'ready',
        // one in six is failing: DNS leaves it out
        status: i % 6 === 5 ? 'critical' : 'passing',
        output: '',
        checkedAt: new Date().toISOString(),
      }),
    )
  }
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const self = createSigner(await generateKeyPair('Ed25519'))
  const store = new LocalStore({ signer: self, verify: verifyRecordSignature })
  for (let s = 0; s < SERVICES; s++)
    await store.put(
      `services/svc${s}`,
      serviceCodec.encode({
        name: `svc${s}`,
        tags: ['v1'],
        ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
      }),
    )
  const hosts: Host[] = []
  for (let h = 0; h < HOSTS; h++) {
    const signer = createSigner(await generateKeyPair('Ed25519'))
    const host = { index: h, signer, store: new LocalStore({ signer, verify: verifyRecordSignature }) }
    await fillHost(host)
    const merged = store.merge(host.store.list(''))
    if (merged.rejected) throw new Error(`host ${h}: ${merged.rejected} records rejected by the store`)
    hosts.push(host)
  }
  const records = store.list('').length
  progress(
    `store filled: ${records} records from ${HOSTS} hosts in ${round((performance.now() - t0) / 1000, 1)} s`,
  )

  // the constructor builds the whole zone once, cold: the full build
  let started = performance.now()
  const dns = localDns(store, self.self, PORT)
  const fullBuildMs = performance.now() - started
  started = performance.now()
  await dns.start() // updates once more, with nothing changed: warm
  const warmBuildMs = dns.status().zone.buildMs
  progress(
    `zone: ${JSON.stringify(dns.status().zone)}; full build ${round(fullBuildMs, 1)} ms, warm rebuild ${warmBuildMs} ms`,
  )

  /** one endpoint of host h moves to a new address (a container restarted): the remote write, merged */
  let moves = 0
  const churnOne = async (): Promise<string> => {
    const host = hosts[moves % hosts.length]!
    const i = moves % ENDPOINTS
    moves++
    const ipv4 = `${subnet(host.index)}.${100 + (moves % 150)}`
    const r = await host.store.put(
      epKey(host, i),
      endpointCodec.encode(endpointValue(host.index, i, { ipv4 })),
    )
    store.merge([r])
    return ipv4
  }
  const waitServed = async (name: string, ipv4: string, limitMs = 30_000): Promise<number> => {
    const from = performance.now()
    while (performance.now() - from < limitMs) {
      const a = await queryServer('127.0.0.1', PORT, name, 'A', 10_000)
      if (a.answers.some((x) => (x as { data?: unknown }).data === ipv4)) return performance.now() - from
      await new Promise((r) => setTimeout(r, 2))
    }
    throw new Error(`${name} never answered ${ipv4}`)
  }

  // single changes, one at a time: the zone update each one costs
  const singleMs: number[] = []
  const visibleMs: number[] = []
  for (let k = 0; k < 10; k++) {
    const host = hosts[moves % hosts.length]!
    const name = `c${host.index}x${moves % ENDPOINTS}.ctr.plexus.internal`
    const before = dns.status().zone.builtAt
    const ipv4 = await churnOne()
    visibleMs.push(await waitServed(name, ipv4))
    const z = dns.status().zone
    if (z.builtAt !== before) singleMs.push(z.buildMs)
  }
  progress(
    `single-change rebuilds: ${singleMs.join(', ')} ms; change → answer ${visibleMs.map((v) => round(v, 1)).join(', ')} ms`,
  )

  // churn: a change every 20 ms for CHURN_S s while a client on another thread asks; event-loop blocks and answer times
  const loop = monitorEventLoopDelay({ resolution: 5 })
  loop.enable()
  const answerMs: number[] = []
  // the client runs on its own thread: in this one, its timers would wait out the very blocks it should see;
  // started and ready before the churn, so the thread's own start-up is not measured as an answer time
  const w = new Worker(new URL(import.meta.url), { workerData: { seconds: CHURN_S } })
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve())
    w.once('error', reject)
  })
  const asker = new Promise<number[]>((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
  let stop = false
  w.postMessage('go')
  const churner = (async () => {
    while (!stop) {
      await churnOne()
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  await new Promise((r) => setTimeout(r, CHURN_S * 1000))
  stop = true
  answerMs.push(...(await asker))
  await churner
  loop.disable()
  const z = dns.status().zone
  const mem = process.memoryUsage()
  await dns.stop()

  const fields = {
    runs: 1,
    hosts: HOSTS,
    records,
    zone_names: z.names,
    zone_full_build_ms: round(fullBuildMs, 1),
    zone_warm_rebuild_ms: warmBuildMs,
    zone_single_change_ms: round(median(singleMs), 1),
    zone_single_change_max_ms: round(Math.max(...singleMs), 1),
    change_to_answer_ms: round(median(visibleMs), 1),
    churn_changes: moves,
    churn_loop_block_max_ms: round(loop.max / 1e6, 1),
    churn_loop_block_p99_ms: round(loop.percentile(99) / 1e6, 1),
    churn_answer_p50_ms: round(median(answerMs), 2),
    churn_answer_p99_ms: round(quantile(answerMs, 0.99), 1),
    churn_answer_max_ms: round(Math.max(...answerMs), 1),
    churn_answers_over_100ms: answerMs.filter((v) => v > 100).length,
    churn_answers: answerMs.length,
    zone_bytes: z.bytes,
    // the whole bench process: the 50,000-record store, the zone, the asking thread
    rss_mb: round(mem.rss / 2 ** 20, 1),
    heap_mb: round(mem.heapUsed / 2 ** 20, 1),
  }
  report('zone', fields)
}

/** the asking thread: says it is ready; on 'go', a query, its answer, 5 ms, the next, for `seconds`; posts the answer times */
async function ask(seconds: number): Promise<void> {
  parentPort!.postMessage('ready')
  await new Promise((r) => parentPort!.once('message', r))
  const times: number[] = []
  const until = performance.now() + seconds * 1000
  for (let q = 0; performance.now() < until; q++) {
    const name = `c${q % HOSTS}x${q % ENDPOINTS}.ctr.plexus.internal`
    times.push((await queryServer('127.0.0.1', PORT, name, 'A', 10_000)).rttMs)
    await new Promise((r) => setTimeout(r, 5))
  }
  parentPort!.postMessage(times)
}

if (isMainThread) await main()
else await ask((workerData as { seconds: number }).seconds)
