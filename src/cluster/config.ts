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
  /** the probe period: each period a host pings two members (and those that failed to answer), each ping waits this long */
  heartbeatIntervalMs: number
  /** this host's node record (nodes/<peerId>) is rewritten on a change and at least this often (at most nodeTtlMs / 3) */
  refreshIntervalMs: number
  /** TTL of the node record; when it lapses every host hides that host's owned records */
  nodeTtlMs: number
  /** failure detector: unanswered for this long (from the first probe it missed) = suspect, then dead */
  suspectAfterMs: number
  deadAfterMs: number
  /** digest exchange with a random peer */
  syncIntervalMs: number
  /** RTT probe of a random peer (the kernel's TCP RTT, else a probe round trip), feeding Vivaldi */
  probeIntervalMs: number
  /** re-dial backoff: first retry after redialMinMs, doubling up to redialMaxMs */
  redialMinMs: number
  redialMaxMs: number
  /** keep dialing known hosts until this many are connected */
  targetPeers: number
  /** how long tombstones and dead records are kept (the partition bound) */
  reapAfterMs: number
}

/** How often a node record is rewritten when nothing in it changed: refreshIntervalMs, at most a third of its TTL (three chances before it lapses). */
export const nodeRefreshMs = (c: Pick<ClusterConfig, 'refreshIntervalMs' | 'nodeTtlMs'>): number =>
  Math.min(c.refreshIntervalMs, c.nodeTtlMs / 3)
