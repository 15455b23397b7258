// Time limits for the cluster's network calls. Not AbortSignal.timeout(): in
// Node 20 each such signal's timer stays registered in a process-wide
// FinalizationRegistry after the call is over, held until a full GC has
// collected the signal and the registry's cleanup has run; an agent collects
// its old generation rarely (--heap-growing-percent=100), so a busy agent
// carries one timer, WeakRef, WeakCell and closure for every call of the last
// minutes (967 of them after 2,000 soak connections, issue 22). A deadline is
// a plain timer that is cleared as soon as the call settles.

/** runs fn with a signal that aborts after ms (a TimeoutError, as AbortSignal.timeout); the timer goes when fn settles */
export async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms)
  // as AbortSignal.timeout's: a pending call does not keep the process alive
  timer.unref()
  try {
    return await fn(ac.signal)
  } finally {
    clearTimeout(timer)
  }
}
