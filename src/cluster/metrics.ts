import type { Metrics } from '../lib/metrics.js'
import type { HostView, MemberState } from './membership.js'

const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead']

/** The cluster's metrics (gossip, anti-entropy sync, connections); conventions in src/lib/metrics.ts. */
export function clusterMetrics(m: Metrics) {
  return {
    /** received gossip deltas; reason says why a rejected one was (malformed, oversize, records, envelope_<gossipsub error>) */
    gossipMessages: m.counter({
      name: 'plexus_gossip_messages_total',
      help: 'Gossip deltas received, by verdict (accept, ignore, reject) and, for rejects, reason',
      labelNames: ['verdict', 'reason'],
    }),
    gossipPublishFailures: m.counter({
      name: 'plexus_gossip_publish_failures_total',
      help: 'Gossip deltas this host failed to publish (anti-entropy carries them)',
    }),
    gossipOutboxWaits: m.counter({
      name: 'plexus_gossip_outbox_waits_total',
      help: 'Times publishing paused because the transport had too much unsent gossip',
    }),
    /** one round = one push-pull exchange with a peer (several pages) */
    syncRounds: m.counter({
      name: 'plexus_sync_rounds_total',
      help: 'Anti-entropy sync rounds this host started, by result (ok, rejected: a record failed validation, failed)',
      labelNames: ['result'],
    }),
    syncBytes: m.counter({
      name: 'plexus_sync_bytes_total',
      help: 'Bytes of sync messages, by direction (received: answers and pushes, sent: answers and pushes)',
      labelNames: ['direction'],
    }),
    syncRequestsRejected: m.counter({
      name: 'plexus_sync_requests_rejected_total',
      help: 'Sync requests from peers refused, by reason (malformed: not decodable, records: a pushed record failed validation)',
      labelNames: ['reason'],
    }),
    connectionsRefused: m.counter({
      name: 'plexus_cluster_connections_refused_total',
      help: 'Connections refused at the handshake: another cluster key, or not Plexus',
    }),
    connectionErrors: m.counter({
      name: 'plexus_cluster_connection_errors_total',
      help: 'Cluster connections that failed after the handshake and were closed',
    }),
    /** one cipher pair per open connection: a leak shows as a number that only grows */
    ciphers: m.gauge({
      name: 'plexus_cluster_ciphers',
      help: 'Cipher pairs held for open cluster connections (one per connection)',
    }),
    strayErrors: m.counter({
      name: 'plexus_cluster_stray_errors_total',
      help: 'Errors escaped from a connection (caught at process level, logged, the agent carries on)',
    }),
  }
}

export type ClusterMetrics = ReturnType<typeof clusterMetrics>

/** Members by state, the RTT estimate per peer and this host's local health, read from membership when scraped. */
export function membershipGauges(m: Metrics, hosts: () => HostView[], health: () => number): void {
  m.sampled(
    {
      name: 'plexus_cluster_local_health',
      help: "Lifeguard's local health score (0 = this host's probes are answered in time; the probe timeout is the period times 1 + score)",
    },
    (g) => g.set(health()),
  )
  m.sampled(
    {
      name: 'plexus_cluster_members',
      help: 'Hosts this host knows of, by membership state (itself included)',
      labelNames: ['state'],
    },
    (g) => {
      // every state present, at 0 when empty: an alert on suspect > 0 needs the series
      for (const state of MEMBER_STATES) g.set({ state }, 0)
      for (const h of hosts()) g.inc({ state: h.state })
    },
  )
  m.sampled(
    {
      name: 'plexus_cluster_peer_rtt_seconds',
      help: 'Estimated round trip to each peer, from Vivaldi network coordinates',
      labelNames: ['peer', 'host'],
    },
    (g) => {
      for (const h of hosts())
        if (!h.self && h.rttMs !== null) g.set({ peer: h.peerId, host: h.name }, h.rttMs / 1000)
    },
  )
}
