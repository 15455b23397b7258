/** The `cluster` section of plexusd's config (defaults and schema: src/agent/config.ts, docs/config.md). */
export interface ClusterConfig {
  /** libp2p listen multiaddrs */
  listen: string[]
  /** multiaddrs to announce instead of the listen addresses */
  announce: string[]
  /** multiaddrs of any members to join through */
  bootstrap: string[]
  /** pre-shared cluster key (the text `plexctl cluster init` prints), or a file holding it */
  key?: string
  keyFile?: string
  /** membership heartbeat (nodes/<peerId>) period */
  heartbeatIntervalMs: number
  /** TTL of the heartbeat record; when it lapses every host hides that host's owned records */
  nodeTtlMs: number
  /** failure detector: no heartbeat for this long = suspect, then dead */
  suspectAfterMs: number
  deadAfterMs: number
  /** digest exchange with a random peer */
  syncIntervalMs: number
  /** RTT probe of a random peer (the kernel's TCP RTT, else libp2p ping), feeding Vivaldi */
  probeIntervalMs: number
  /** re-dial backoff: first retry after redialMinMs, doubling up to redialMaxMs */
  redialMinMs: number
  redialMaxMs: number
  /** keep dialing known hosts until this many are connected */
  targetPeers: number
  /** how long tombstones and dead records are kept (the partition bound) */
  reapAfterMs: number
}
