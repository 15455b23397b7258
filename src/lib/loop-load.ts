import { type EventLoopUtilization, performance } from 'node:perf_hooks'

// How busy this process's event loop has been: the share of wall time it ran
// callbacks rather than waiting for I/O (Node's event loop utilization), over
// the last window. Read when asked, from counters libuv keeps anyway: no timer,
// so an idle agent pays nothing for it (a delay histogram wakes up 100 times a
// second). A loop near 1 has no room left: the cluster's probes and gossip
// wait behind whatever it is doing.

/** Returns a reader of the loop's busy share (0–1) over the last window of at least windowMs. */
export function loopLoad(windowMs = 1000): () => number {
  let mark: EventLoopUtilization = performance.eventLoopUtilization()
  let at = performance.now()
  let last = 0
  return () => {
    const now = performance.now()
    if (now - at >= windowMs) {
      const cur = performance.eventLoopUtilization()
      last = performance.eventLoopUtilization(cur, mark).utilization
      mark = cur
      at = now
    }
    return last
  }
}
