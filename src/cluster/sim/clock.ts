import type { Scheduler } from '../transport.js'

// A virtual clock with a single event queue (binary heap), so thousands of
// simulated hosts run deterministically in one process: same seed, same run.

/** mulberry32: small, fast, good enough for simulation choices. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Event {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

export class EventQueue {
  private heap: Event[] = []
  private seq = 0
  private t: number

  constructor(start: number) {
    this.t = start
  }

  now(): number {
    return this.t
  }

  get pending(): number {
    return this.heap.length
  }

  /** Runs fn at now + delay; returns cancel. */
  at(delay: number, fn: () => void): () => void {
    // whole milliseconds, like Date.now()
    const e: Event = { at: this.t + Math.max(0, Math.round(delay)), seq: this.seq++, fn, cancelled: false }
    this.push(e)
    return () => {
      e.cancelled = true
    }
  }

  /**
   * Marks that an event settled a promise: before the next event, the code
   * awaiting it (e.g. a sync pull continuing after its response) must run.
   */
  settled(): void {
    this.flush = true
  }
  private flush = false

  /** Runs events until the clock reaches `until` (events at exactly `until` included). */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      const top = this.heap[0]
      if (!top || top.at > until) break
      this.pop()
      this.t = top.at
      if (!top.cancelled) top.fn()
      if (this.flush) {
        this.flush = false
        // setImmediate runs after every queued microtask, however deep the await chain
        await new Promise((r) => setImmediate(r))
      }
    }
    this.t = Math.max(this.t, until)
  }

  /** A Scheduler for one host; cancelAll() stops every timer it made (a crash). */
  scheduler(): Scheduler & { cancelAll(): void } {
    const cancels = new Set<() => void>()
    const q = this
    return {
      now: () => q.t,
      after(ms, fn) {
        const c = q.at(ms, () => {
          cancels.delete(c)
          fn()
        })
        cancels.add(c)
        return () => {
          c()
          cancels.delete(c)
        }
      },
      every(ms, fn) {
        let c: () => void
        const arm = () => {
          c = q.at(ms, () => {
            arm()
            fn()
          })
        }
        arm()
        const cancel = () => c()
        cancels.add(cancel)
        return () => {
          cancel()
          cancels.delete(cancel)
        }
      },
      cancelAll() {
        for (const c of cancels) c()
        cancels.clear()
      },
    }
  }

  private less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  private push(e: Event): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i] as Event, h[p] as Event)) break
      ;[h[i], h[p]] = [h[p] as Event, h[i] as Event]
      i = p
    }
  }

  private pop(): void {
    const h = this.heap
    const last = h.pop() as Event
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l] as Event, h[m] as Event)) m = l
      if (r < h.length && this.less(h[r] as Event, h[m] as Event)) m = r
      if (m === i) break
      ;[h[i], h[m]] = [h[m] as Event, h[i] as Event]
      i = m
    }
  }
}
