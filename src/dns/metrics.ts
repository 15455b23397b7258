import { DNS_BUCKETS, type HotHistogram, type Metrics } from '../lib/metrics.js'
import type { Upstream } from './forward/forward.js'

// Query types with a name of their own in the metrics; any other is "other", so a
// client asking for every type number cannot blow up the series (CoreDNS does the same).
const TYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  64: 'SVCB',
  65: 'HTTPS',
  255: 'ANY',
}
const RCODE_NAMES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
]

/** zone updates: one change at 50,000 records takes tens of milliseconds, a full build seconds (issue 22) */
const ZONE_UPDATE_BUCKETS = [
  0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10,
]

export const typeName = (qtype: number): string => TYPE_NAMES[qtype] ?? 'other'
/** the header's 4-bit rcode by its RFC name (12-15 are unassigned: their number) */
export const rcodeName = (rcode: number): string => RCODE_NAMES[rcode] ?? String(rcode)

/** What the listeners report for every answered query (the hot path: plain numbers, no label hashing). */
export interface AnswerRecorder {
  answered(tcp: boolean, qtype: number, rcode: number, startedAt: number): void
}

/** The DNS server's counts the service keeps in plain numbers (ServerStats and the stages'), read when scraped. */
export interface DnsCounts {
  malformed: number
  errors: number
  tcpConnections: number
  tcpRefused: number
  tcpTimedOut: number
  udpDropped: number
  cacheHits: number
  cacheMisses: number
  forwardFailures: number
  overloaded: number
}

/**
 * The DNS server's metrics, named after CoreDNS' (requests by type, responses
 * by rcode, a request-duration histogram, forwarding per upstream).
 */
export class DnsMetrics implements AnswerRecorder {
  /** answers by proto, qtype and rcode, packed in one number (tcp << 24 | qtype << 8 | rcode) */
  private readonly answers = new Map<number, number>()
  private readonly duration: HotHistogram
  readonly forwardAttempts
  private readonly zoneUpdate

  constructor(m: Metrics, counts: () => DnsCounts) {
    m.sampledCounter(
      {
        name: 'plexus_dns_responses_total',
        help: 'DNS queries answered, by transport (udp, tcp), query type and response code',
        labelNames: ['proto', 'type', 'rcode'],
      },
      (c) => {
        for (const [key, n] of this.answers)
          c.inc(
            {
              proto: key >>> 24 ? 'tcp' : 'udp',
              type: typeName((key >>> 8) & 0xffff),
              rcode: rcodeName(key & 0xff),
            },
            n,
          )
      },
    )
    this.duration = m.hotHistogram({
      name: 'plexus_dns_request_duration_seconds',
      help: 'Time from a parsed DNS query to its answer (forwarded ones included)',
      buckets: DNS_BUCKETS,
    })
    m.sampledCounter(
      {
        name: 'plexus_dns_malformed_queries_total',
        help: 'DNS packets that were not a query we could parse (answered FORMERR when an id was readable)',
      },
      (c) => c.inc(counts().malformed),
    )
    m.sampledCounter(
      {
        name: 'plexus_dns_errors_total',
        help: 'DNS queries whose handling failed (answered SERVFAIL) and socket errors',
      },
      (c) => c.inc(counts().errors),
    )
    m.sampledCounter(
      {
        name: 'plexus_dns_tcp_connections_total',
        help: 'DNS TCP connections, by result (accepted, refused: over a limit, timed_out: no whole query in time)',
        labelNames: ['result'],
      },
      (c) => {
        const n = counts()
        c.inc({ result: 'accepted' }, n.tcpConnections)
        c.inc({ result: 'refused' }, n.tcpRefused)
        c.inc({ result: 'timed_out' }, n.tcpTimedOut)
      },
    )
    m.sampledCounter(
      {
        name: 'plexus_dns_udp_replies_dropped_total',
        help: "UDP replies dropped because the socket's send buffer and the queue behind it were full",
      },
      (c) => c.inc(counts().udpDropped),
    )
    m.sampledCounter(
      {
        name: 'plexus_dns_cache_requests_total',
        help: 'Lookups in the forwarding cache, by result (hit, miss)',
        labelNames: ['result'],
      },
      (c) => {
        const n = counts()
        c.inc({ result: 'hit' }, n.cacheHits)
        c.inc({ result: 'miss' }, n.cacheMisses)
      },
    )
    m.sampledCounter(
      {
        name: 'plexus_dns_forward_failures_total',
        help: 'Forwarded queries answered SERVFAIL, by reason (upstreams: none answered, overloaded: too many in flight)',
        labelNames: ['reason'],
      },
      (c) => {
        const n = counts()
        c.inc({ reason: 'upstreams' }, n.forwardFailures)
        c.inc({ reason: 'overloaded' }, n.overloaded)
      },
    )
    this.forwardAttempts = m.counter({
      name: 'plexus_dns_forward_requests_total',
      help: 'Queries sent to an upstream resolver, by upstream and result (answer; failed: SERVFAIL, REFUSED or too short; no_reply: timeout or send error)',
      labelNames: ['upstream', 'result'],
    })
    this.zoneUpdate = m.histogram({
      name: 'plexus_dns_zone_update_seconds',
      help: 'Time a zone update takes from its start until the answer table is patched, queries served between its slices included, by kind (full: every record read, the first build; changes: the changed records)',
      labelNames: ['kind'],
      buckets: ZONE_UPDATE_BUCKETS,
    })
  }

  /** One zone update ended (DnsService: the first build and every update after it). */
  zoneUpdated(kind: 'full' | 'changes', ms: number): void {
    this.zoneUpdate.observe({ kind }, ms / 1000)
  }

  answered(tcp: boolean, qtype: number, rcode: number, startedAt: number): void {
    const key = ((tcp ? 1 : 0) << 24) | (qtype << 8) | rcode
    this.answers.set(key, (this.answers.get(key) ?? 0) + 1)
    this.duration.observe((performance.now() - startedAt) / 1000)
  }

  /** One attempt at one upstream (ForwardStage calls it). */
  forwarded(u: Upstream, result: 'answer' | 'failed' | 'no_reply'): void {
    this.forwardAttempts.inc({
      upstream: u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`,
      result,
    })
  }
}
