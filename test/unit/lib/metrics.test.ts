import t from 'tap'
import { apiMetrics } from '../../../src/api/metrics.js'
import { clusterMetrics, membershipGauges } from '../../../src/cluster/metrics.js'
import { datapathMetrics } from '../../../src/datapath/metrics.js'
import { DnsMetrics, rcodeName, typeName } from '../../../src/dns/metrics.js'
import { cniCommandOf, endpointsMetrics } from '../../../src/endpoints/metrics.js'
import { ipamMetrics, leaseStateGauge } from '../../../src/ipam/metrics.js'
import { Metrics, nameProblem, seriesKey } from '../../../src/lib/metrics.js'
import { portsMetrics, publishedPortsGauge } from '../../../src/ports/metrics.js'
import { healthMetrics, healthStatusGauge } from '../../../src/services/metrics.js'
import { storeMetrics, storeRecordsGauge } from '../../../src/store/metrics.js'

const zeroDns = {
  malformed: 0,
  errors: 0,
  tcpConnections: 0,
  tcpRefused: 0,
  tcpTimedOut: 0,
  udpDropped: 0,
  cacheHits: 0,
  cacheMisses: 0,
  forwardFailures: 0,
  overloaded: 0,
}

/** every module's metrics on one registry, as the agent declares them */
function everyModule(m: Metrics): void {
  storeMetrics(m)
  storeRecordsGauge(m, () => ({ live: 0, dead: 0 }))
  clusterMetrics(m)
  membershipGauges(
    m,
    () => [],
    () => 0,
  )
  ipamMetrics(m)
  leaseStateGauge(m, ['acquired'], () => 'acquired')
  datapathMetrics(m)
  new DnsMetrics(m, () => zeroDns)
  endpointsMetrics(m)
  portsMetrics(m)
  publishedPortsGauge(m, () => 0)
  healthMetrics(m)
  healthStatusGauge(m, () => [])
  apiMetrics(m)
}

t.test('naming rules: prefix, snake case, base units, _total on counters only', async (t) => {
  t.equal(nameProblem('counter', 'plexus_gossip_messages_total'), undefined)
  t.equal(nameProblem('histogram', 'plexus_cni_request_duration_seconds'), undefined)
  t.match(nameProblem('counter', 'gossip_messages_total'), /plexus_/)
  t.match(nameProblem('counter', 'plexus_gossip_messages'), /_total/)
  t.match(nameProblem('gauge', 'plexus_members_total'), /_total/)
  t.match(nameProblem('histogram', 'plexus_pass_duration_ms'), /base units/)
  t.match(nameProblem('gauge', 'plexus_Members'), /snake/)
  t.throws(() => new Metrics().counter({ name: 'plexus_passes', help: 'x' }), /_total suffix/)
})

t.test(
  'every module declares valid, distinct names, and declaring twice returns the same metric',
  async (t) => {
    const m = new Metrics()
    everyModule(m)
    const names = m.registry.getMetricsAsArray().map((x) => x.name)
    t.ok(names.length >= 40, `${names.length} metrics`)
    t.same(
      names.filter((n) => !n.startsWith('plexus_')),
      [],
    )
    t.doesNotThrow(() => everyModule(m), 'a second instance of a module on the same registry is fine')
    t.equal(m.registry.getMetricsAsArray().length, names.length)
    t.equal(storeMetrics(m).rejected, storeMetrics(m).rejected, 'same object')
    t.throws(() => m.histogram({ name: 'plexus_store_records', help: 'x' }), /gauge and as a histogram/)
  },
)

t.test('figures: counters and gauges by series key, histograms as _sum and _count', async (t) => {
  const m = new Metrics()
  const c = clusterMetrics(m)
  c.gossipMessages.inc({ verdict: 'reject', reason: 'records' }, 2)
  c.gossipMessages.inc({ verdict: 'accept' })
  datapathMetrics(m).passDuration.observe(0.2)
  const f = await m.figures()
  t.equal(f['plexus_gossip_messages_total{reason="records",verdict="reject"}'], 2)
  t.equal(f['plexus_gossip_messages_total{verdict="accept"}'], 1)
  t.equal(f.plexus_datapath_pass_duration_seconds_count, 1)
  t.equal(f.plexus_datapath_pass_duration_seconds_sum, 0.2)
  t.notOk(
    Object.keys(f).some((k) => k.includes('_bucket')),
    'no buckets in the figures',
  )
  t.equal(await m.value('plexus_gossip_messages_total', { verdict: 'reject', reason: 'records' }), 2)
  t.equal(await m.value('plexus_gossip_messages_total', { verdict: 'ignore' }), 0, 'unmoved series read 0')
  t.equal(seriesKey('x', { b: '2', a: 'q"\\' }), 'x{a="q\\"\\\\",b="2"}', 'escaped as the text format does')
})

t.test('sampled gauges are read when scraped; vanished label sets are dropped', async (t) => {
  const m = new Metrics()
  let hosts = [
    { name: 'h1', peerId: 'p1', state: 'alive', self: true, rttMs: null },
    { name: 'h2', peerId: 'p2', state: 'suspect', self: false, rttMs: 12.5 },
  ]
  membershipGauges(
    m,
    () => hosts as never,
    () => 2,
  )
  let f = await m.figures()
  t.equal(f['plexus_cluster_members{state="alive"}'], 1)
  t.equal(f['plexus_cluster_members{state="suspect"}'], 1)
  t.equal(f['plexus_cluster_members{state="dead"}'], 0, 'empty states are present at 0')
  t.equal(f['plexus_cluster_peer_rtt_seconds{host="h2",peer="p2"}'], 0.0125)
  t.equal(f.plexus_cluster_local_health, 2, 'local health as membership reports it')
  t.notOk('plexus_cluster_peer_rtt_seconds{host="h1",peer="p1"}' in f, 'no RTT to itself')
  hosts = [hosts[0] as (typeof hosts)[0]]
  f = await m.figures()
  t.notOk(
    Object.keys(f).some((k) => k.includes('p2')),
    'a peer gone is gone from the metrics',
  )
  t.equal(f['plexus_cluster_members{state="suspect"}'], 0)

  let state = 'settling'
  leaseStateGauge(m, ['settling', 'acquired', 'fenced'], () => state)
  t.equal(await m.value('plexus_ipam_lease_state', { state: 'settling' }), 1)
  state = 'fenced'
  t.equal(await m.value('plexus_ipam_lease_state', { state: 'settling' }), 0)
  t.equal(await m.value('plexus_ipam_lease_state', { state: 'fenced' }), 1)
})

t.test(
  'DNS: answers by proto, type and rcode; unknown types folded; latency buckets cumulative',
  async (t) => {
    const m = new Metrics()
    const counts = { ...zeroDns, tcpRefused: 3, cacheHits: 5 }
    const dns = new DnsMetrics(m, () => counts)
    const now = performance.now()
    dns.answered(false, 1, 0, now)
    dns.answered(false, 1, 0, now)
    dns.answered(true, 33, 3, now)
    dns.answered(false, 4242, 2, now - 50) // 50 ms ago
    const f = await m.figures()
    t.equal(f['plexus_dns_responses_total{proto="udp",rcode="NOERROR",type="A"}'], 2)
    t.equal(f['plexus_dns_responses_total{proto="tcp",rcode="NXDOMAIN",type="SRV"}'], 1)
    t.equal(f['plexus_dns_responses_total{proto="udp",rcode="SERVFAIL",type="other"}'], 1)
    t.equal(f['plexus_dns_tcp_connections_total{result="refused"}'], 3)
    t.equal(f['plexus_dns_cache_requests_total{result="hit"}'], 5)
    t.equal(f.plexus_dns_request_duration_seconds_count, 4)
    const text = await m.text()
    t.match(text, /plexus_dns_request_duration_seconds_bucket\{le="0.032"\} 3\n/, 'three answers under 32 ms')
    t.match(text, /plexus_dns_request_duration_seconds_bucket\{le="0.064"\} 4\n/, 'all four under 64 ms')
    t.match(text, /plexus_dns_request_duration_seconds_bucket\{le="\+Inf"\} 4\n/)
    t.match(text, /# TYPE plexus_dns_request_duration_seconds histogram/)
    t.equal(typeName(28), 'AAAA')
    t.equal(typeName(99), 'other')
    t.equal(rcodeName(5), 'REFUSED')
    t.equal(rcodeName(13), '13')
  },
)

t.test('CNI command from the route', async (t) => {
  t.equal(cniCommandOf('/v1/cni/add'), 'ADD')
  t.equal(cniCommandOf('/v1/cni/check'), 'CHECK')
  t.equal(cniCommandOf(undefined), 'UNKNOWN')
  t.equal(cniCommandOf('/v1/cni/add/../x'), 'UNKNOWN')
})
