// GET /metrics on the 3-host test bed: the series that should move do when a
// container is added (CNI ADD through the real plugin), a DNS query is
// answered, a route deleted by hand is repaired and a forged gossip record is
// rejected; the output parses with promtool, on the API socket and on the
// TCP listener `metrics.listen` opens.
import { request } from 'node:http'
import t from 'tap'
import { UNDERLAY_PREFIX } from '../../netns-fixtures/lib/state.js'
import { eventually, run, runGossipAttacker, upCluster } from '../helpers/fixture.js'
import { socketOf, waitReady } from './cni/plugin.js'

const METRICS_PORT = 9464
const ip = (i: number) => `${UNDERLAY_PREFIX}.${10 + i}`

/**
 * GET /metrics on a host's API socket (the test process reaches the socket file from any namespace).
 * A connection of its own each time (agent: false): Node's global agent keeps connections alive and
 * would reuse one the agent has already closed as idle, which fails as "write EPIPE" under load.
 */
function scrapeSocket(socketPath: string): Promise<{ type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics', method: 'GET', agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        text += d
      })
      res.on('end', () => resolve({ type: String(res.headers['content-type']), text }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Sample lines → value by series as written (`name{a="1"}`); labels are in prom-client's order (as declared). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

/** The sum of every sample of `name` whose labels include all of `labels`. */
function total(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const [series, v] of samples) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?$/.exec(series)
    if (!m || m[1] !== name) continue
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, want]) => have.get(k) === want)) sum += v
  }
  return sum
}

/** promtool's verdict: 0 clean, 3 lint problems only (1 would be a text it cannot parse). */
function promtool(text: string): { status: number; problems: string[] } {
  const r = run('promtool', ['check', 'metrics'], { input: text })
  return { status: r.status, problems: (r.stdout + r.stderr).split('\n').filter(Boolean) }
}

t.setTimeout(1_200_000)
const c = upCluster(t, {
  hosts: 3,
  prefix: 'mx',
  agentConfig: { metrics: { listen: `0.0.0.0:${METRICS_PORT}` } },
})
for (const h of ['h1', 'h2', 'h3']) await waitReady(c, h)
const h1 = async () => parse((await scrapeSocket(socketOf(c, 'h1'))).text)

t.test('GET /metrics on the API socket: the text format, promtool parses it', async (t) => {
  const { type, text } = await scrapeSocket(socketOf(c, 'h1'))
  t.match(type, /^text\/plain; version=0\.0\.4/)
  const check = promtool(text)
  t.ok(
    check.status === 0 || check.status === 3,
    `promtool parsed it (exit ${check.status}): ${check.problems}`,
  )
  // prom-client names three Node gauges *_total (nodejs_active_handles_total, ...): that lint is theirs
  t.same(
    check.problems.filter((p) => !/^nodejs_active_\w+_total non-counter/.test(p)),
    [],
    'no lint problem in our own series',
  )
  const s = parse(text)
  t.equal(total(s, 'plexus_cluster_members', { state: 'alive' }), 3, 'three members alive')
  t.equal(total(s, 'plexus_ipam_lease_state', { state: 'acquired' }), 1, 'lease held')
  t.ok(total(s, 'plexus_store_records', { state: 'live' }) > 0, 'store records')
  t.ok(total(s, 'plexus_sync_rounds_total', { result: 'ok' }) > 0, 'sync rounds')
  t.ok(total(s, 'plexus_sync_bytes_total', { direction: 'received' }) > 0, 'sync bytes')
  t.ok(total(s, 'plexus_datapath_passes_total', { result: 'ok' }) > 0, 'datapath passes')
  t.ok(total(s, 'plexus_datapath_firewall_apply_duration_seconds_count') > 0, 'firewall applies timed')
  t.ok(total(s, 'process_resident_memory_bytes') > 0, 'process metrics')
  for (const peer of ['h2', 'h3'])
    t.ok(total(s, 'plexus_cluster_peer_rtt_seconds', { host: peer }) > 0, `RTT estimate to ${peer}`)
})

t.test('metrics.listen serves the same text over TCP, and only /metrics', async (t) => {
  const get = (path: string) =>
    c.execUnderlay(['busybox', 'wget', '-q', '-O', '-', `http://${ip(2)}:${METRICS_PORT}${path}`])
  const r = await eventually(() => {
    const x = get('/metrics')
    return x.status === 0 ? x : undefined
  }, 10_000)
  t.ok(r, 'h2 answers on TCP')
  const s = parse(r?.stdout ?? '')
  t.equal(total(s, 'plexus_cluster_members', { state: 'alive' }), 3)
  t.ok(promtool(r?.stdout ?? '').status !== 1, 'parses')
  t.not(get('/v1/status').status, 0, 'the API is not on TCP')
})

t.test('a CNI ADD moves the CNI and endpoint series', async (t) => {
  const before = await h1()
  const r = c.run('h1', 'm1', ['sleep', '600'])
  t.equal(r.status, 0, r.stderr)
  const after = await h1()
  const add = { command: 'ADD' }
  t.equal(
    total(after, 'plexus_cni_request_duration_seconds_count', add) -
      total(before, 'plexus_cni_request_duration_seconds_count', add),
    1,
    'one ADD timed',
  )
  t.ok(
    total(after, 'plexus_cni_request_duration_seconds_sum', add) >
      total(before, 'plexus_cni_request_duration_seconds_sum', add),
  )
  t.equal(
    total(after, 'plexus_endpoints_events_total', { event: 'attached' }) -
      total(before, 'plexus_endpoints_events_total', { event: 'attached' }),
    1,
    'one attachment',
  )
  t.equal(total(after, 'plexus_cni_errors_total'), total(before, 'plexus_cni_errors_total'), 'no CNI error')
})

t.test('an answered DNS query moves the responses and the latency histogram', async (t) => {
  const series = { proto: 'udp', type: 'A', rcode: 'NOERROR' }
  const before = await h1()
  const dig = c.execCtr('m1', ['dig', '+short', '+time=2', '+tries=1', 'h2.node.plexus.internal'])
  t.equal(dig.stdout.trim(), ip(2), `h2 resolved from a container on h1: ${dig.stderr}`)
  const after = await h1()
  t.equal(
    total(after, 'plexus_dns_responses_total', series) - total(before, 'plexus_dns_responses_total', series),
    1,
  )
  t.equal(
    total(after, 'plexus_dns_request_duration_seconds_count') -
      total(before, 'plexus_dns_request_duration_seconds_count'),
    1,
  )
  const nx = { proto: 'udp', type: 'A', rcode: 'NXDOMAIN' }
  c.execCtr('m1', ['dig', '+short', '+time=2', '+tries=1', 'nobody.node.plexus.internal'])
  t.equal(
    total(await h1(), 'plexus_dns_responses_total', nx) - total(after, 'plexus_dns_responses_total', nx),
    1,
    'NXDOMAIN',
  )
})

t.test('a route deleted by hand is repaired and counted', async (t) => {
  const kind = { kind: 'route' }
  const before = total(await h1(), 'plexus_datapath_drift_repaired_total', kind)
  const h2subnet = c.plexctlJson<{ subnet: string }>('h2', ['routes']).subnet
  t.equal(c.exec('h1', ['ip', 'route', 'del', h2subnet]).status, 0, `deleted ${h2subnet} on h1`)
  const repaired = await eventually(
    async () => total(await h1(), 'plexus_datapath_drift_repaired_total', kind) > before,
    10_000,
    100,
  )
  t.ok(repaired, 'plexus_datapath_drift_repaired_total{kind="route"} moved')
  t.ok(c.exec('h1', ['ip', 'route', 'show', h2subnet]).stdout.includes(h2subnet), 'and the route is back')
})

t.test('a forged gossip record is rejected and counted', async (t) => {
  const before = await h1()
  const atk = runGossipAttacker(c, 'h3', 1)
  t.equal(atk.status, 0, `attacker ran: ${atk.stderr}`)
  const moved = (s: Map<string, number>, name: string, labels: Record<string, string>) =>
    total(s, name, labels) - total(before, name, labels)
  const after = await eventually(async () => {
    const s = await h1()
    return moved(s, 'plexus_store_records_rejected_total', { reason: 'signature' }) > 0 &&
      moved(s, 'plexus_gossip_messages_total', { verdict: 'reject', reason: 'records' }) > 0
      ? s
      : undefined
  }, 10_000)
  t.ok(after, 'the forged record: signature rejected, its delta rejected')
  if (!after) return
  t.ok(
    moved(after, 'plexus_store_records_rejected_total', { reason: 'not-owner' }) > 0,
    'the non-owner record',
  )
  t.ok(
    moved(after, 'plexus_gossip_messages_total', { verdict: 'reject', reason: 'malformed' }) > 0,
    'the malformed delta',
  )
  const status = c.plexctlJson<{ metrics: Record<string, number> }>('h1', ['status'])
  t.ok(
    (status.metrics['plexus_store_records_rejected_total{reason="signature"}'] ?? 0) > 0,
    'plexctl status shows the same figure',
  )
})
