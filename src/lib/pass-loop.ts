/**
 * The loop every reconciler runs on: a pass after a change (debounced, so a
 * burst of records is one pass), a pass on a timer (drift and time-driven
 * state change without a record changing), never two passes at once (a
 * trigger during a pass runs one more right after it), a way to wait
 * until the store as it was at some index has been applied (`converged`),
 * and `explain(subject)`: which store records produced an object the last
 * pass made (the owner lists its origins; lib/explain.ts matches them).
 * What a pass does is the owner's; this file holds only the timing.
 */
import { type Explanation, explainSubject, type Origin } from './explain.js'

export interface PassReport {
  /** ISO time the pass started */
  at: string
  ms: number
  /** the store index the pass read (what it applied, when it did not fail) */
  index: number
  error?: string
}

export interface PassLoopStatus {
  passes: number
  failures: number
  /** the newest store index a successful pass applied */
  applied: number
  lastPass?: PassReport
}

/** What the loop needs of the store to trigger on its changes (the lib floor does not import the store). */
export interface Watchable {
  watch(prefix: string, fn: () => void): () => void
}

export interface PassLoopOptions {
  /** how long after a trigger the pass runs; a trigger while one is pending does not move it */
  debounceMs: number
  /** a full pass runs on this period */
  intervalMs: number
  /** the store's index, read as a pass starts */
  index: () => number
  /** one pass; `full` is the timer's (or a caller's) request for the thorough kind */
  pass: (full: boolean) => Promise<void>
  /** a pass threw: the owner logs and counts it; the loop goes on */
  onError: (err: unknown) => void
  /** store prefixes whose changes trigger a pass: watched from start() until stop() */
  watch?: { store: Watchable; prefixes: readonly string[] }
  /**
   * What the last pass produced and from which records (computed when asked:
   * a pass does not pay for explanations nobody reads), and the store's
   * modify index of a key, for explain().
   */
  explain?: { origins: () => Iterable<Origin>; indexOf: (key: string) => number }
}

interface Waiter {
  index: number
  resolve: () => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

export class PassLoop {
  private timer?: NodeJS.Timeout
  private debounce?: NodeJS.Timeout
  /** ms epoch the pending debounced pass runs at */
  private due = 0
  private running?: Promise<void>
  private again = false
  private fullWanted = false
  private stopped = true
  private waiters: Waiter[] = []
  private cancels: (() => void)[] = []
  private st: PassLoopStatus = { passes: 0, failures: 0, applied: -1 }

  constructor(private readonly o: PassLoopOptions) {}

  /** Watches the store, runs the first (full) pass, then starts the timer. */
  async start(): Promise<void> {
    this.stopped = false
    const w = this.o.watch
    if (w) this.cancels = w.prefixes.map((p) => w.store.watch(p, () => this.trigger()))
    await this.run(true)
    this.timer = setInterval(() => this.trigger(0, true), this.o.intervalMs)
    this.timer.unref()
  }

  /** Stops the timer, waits for a pass in progress; waiters are refused. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const cancel of this.cancels.splice(0)) cancel()
    clearInterval(this.timer)
    clearTimeout(this.debounce)
    this.debounce = undefined
    await this.running
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer)
      w.reject(new Error('stopped before the store was applied'))
    }
  }

  status(): PassLoopStatus {
    return this.st
  }

  /** Which store records produced the objects `subject` names (none before the owner's first pass). */
  explain(subject: string): Explanation[] {
    const e = this.o.explain
    return e ? explainSubject(e.origins(), subject, e.indexOf) : []
  }

  /**
   * Schedules a pass after the debounce (store watches call this). A pending
   * pass is not put off by another trigger, but brought forward by one that
   * asks for it sooner (a caller waiting in converged() does not sit out the
   * debounce its own record write started).
   */
  trigger(delayMs = this.o.debounceMs, full = false): void {
    if (full) this.fullWanted = true
    if (this.stopped) return
    const due = Date.now() + delayMs
    if (this.debounce && due >= this.due) return
    clearTimeout(this.debounce)
    this.due = due
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      void this.run(false)
    }, delayMs)
    this.debounce.unref()
  }

  /** Runs a pass now, or one more right after the pass in progress; resolves when that pass is done. */
  async run(full = true): Promise<void> {
    if (full) this.fullWanted = true
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      do {
        this.again = false
        const fullPass = this.fullWanted
        this.fullWanted = false
        await this.once(fullPass)
      } while (this.again && !this.stopped)
    })()
    try {
      await this.running
    } finally {
      this.running = undefined
    }
  }

  /**
   * Resolves once a pass that started at store index ≥ `index` has succeeded
   * (a caller that wrote a record waits until the kernel has it); rejects
   * after `timeoutMs`, or when the loop stops.
   */
  converged(index: number, timeoutMs: number): Promise<void> {
    if (this.st.applied >= index) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer)
        reject(new Error(`store index ${index} not applied within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.push({ index, resolve, reject, timer })
      this.trigger(0)
    })
  }

  private async once(full: boolean): Promise<void> {
    const index = this.o.index()
    const started = performance.now()
    const at = new Date().toISOString()
    let error: string | undefined
    try {
      await this.o.pass(full)
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
      this.o.onError(err)
    }
    const ms = Math.round(performance.now() - started)
    this.st = {
      passes: this.st.passes + 1,
      failures: this.st.failures + (error === undefined ? 0 : 1),
      applied: error === undefined ? Math.max(this.st.applied, index) : this.st.applied,
      lastPass: { at, ms, index, ...(error === undefined ? {} : { error }) },
    }
    if (error !== undefined) return
    const due = this.waiters.filter((w) => w.index <= index)
    if (!due.length) return
    this.waiters = this.waiters.filter((w) => w.index > index)
    for (const w of due) {
      clearTimeout(w.timer)
      w.resolve()
    }
  }
}
