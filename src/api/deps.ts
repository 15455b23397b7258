import type { MembersView } from '../cluster/service.js'
import type { DatapathComponent } from '../datapath/service.js'
import type { DiagComponent } from '../diag/service.js'
import type { DnsService } from '../dns/service.js'
import type { EndpointService } from '../endpoints/service.js'
import type { AddressAllocator, LeaseComponent, NamedNetworks } from '../ipam/index.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { LinkService } from '../ports/link-service.js'
import type { PortService } from '../ports/publish-service.js'
import type { RunnerService } from '../runner/service.js'
import type { SchedulerService } from '../scheduler/service.js'
import type { Store } from '../store/types.js'

/**
 * Every component the agent's API reads (the composition root fills them in
 * src/agent; js-libp2p style, each route plugin picks what it needs). Defined
 * here, not in src/agent, so the API sits below the root that builds it.
 */
export interface ApiDeps {
  /** the slice of plexusd's config the API shows */
  config: { name: string }
  logger: Logger
  /** the agent's metrics registry: every module declares its metrics on it; GET /metrics serves it */
  metrics: Metrics
  /** aborted once, on shutdown; long loops and timers watch it */
  shutdown: AbortSignal
  startedAt: Date
  version: string
  /** this host's libp2p peer id (its identity in the store; key in <stateDir>/peer.key) */
  peerId: string
  /** the replicated store (filled in Agent.start() before the API or any service starts) */
  store: Store
  /** cluster membership as the API shows it (hosts, state, RTT) */
  members?: MembersView
  /** this host's subnet lease (ipam): current(), status(), view(), events acquired/changed/lost */
  lease?: LeaseComponent
  /** container addresses inside the host subnet (ipam), for CNI ADD/DEL/CHECK/GC */
  addresses?: AddressAllocator
  /** the named (macvlan) networks this host serves: each one's block lease and address allocator (ipam) */
  networks?: NamedNetworks
  /** container attachments: what the CNI plugin's ADD/DEL/CHECK/GC/STATUS run (src/endpoints) */
  endpoints?: EndpointService
  /** the embedded DNS server (src/dns), absent when dns.enabled is false */
  dns?: DnsService
  /** Docker-style links of this host's containers (src/ports) */
  links?: LinkService
  /** the overlay datapath (src/datapath): status, reconcile, converged, explain */
  datapath?: DatapathComponent
  /** plexctl doctor and trace (src/diag) */
  diag?: DiagComponent
  /** published ports of this host's containers (src/ports): admission for CNI ADD and the API, listing */
  ports?: PortService
  /** jobs and their allocations (src/scheduler) */
  scheduler?: SchedulerService
  /** this host's allocations as they run (src/runner): logs, local state */
  runner?: RunnerService
}
