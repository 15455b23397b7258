import { getHeapStatistics } from 'node:v8'
import type { Logger } from './log.js'
import { loopLoad } from './loop-load.js'
import type { Metrics } from './metrics.js'
import { loadAddon } from './native.js'
import type { Startable } from './startable.js'

// Gives memory the agent no longer uses back to the kernel, through
// native/mem.cc, every intervalMs:
//
// - The JS heap. V8 lets the old generation grow to twice what its last
//   mark-compact left (--heap-growing-percent=100, src/agent/main.ts) before it
//   collects again, and an agent that went quiet after a burst allocates too
//   little to get there: 65 s after a 50,000-record load the five agents of
//   bench/converge's size run held 128–197 MB of JS heap, the same records
//   each, the difference garbage (RSS 275–345 MB). When the heap has grown by
//   a quarter over what the last such collection left and the loop was mostly
//   idle, V8 is told of moderate memory pressure: an incremental mark-compact
//   that reduces its footprint, not a stop-the-world collection; once more
//   after one that freed a burst's worth. Under load V8 collects on its own
//   schedule, which this leaves alone.
// - The C heap. glibc returns only the top of its heap by itself; what V8,
//   libuv and Buffers free below it stays in the process. After a write burst
//   an agent holding 30,000 registrations kept 50–70 MB of such free memory
//   (RSS 329 MB, 256 MB after one malloc_trim; heap and external memory
//   unchanged). A trim costs milliseconds; the pages it gives back are faulted
//   in again when next used.

interface MemAddon {
  trim(): boolean
  reduce(): boolean
}

/** the heap's growth over the last collection's result that asks for another: a quarter, and at least this */
const GROWTH = 0.25
const MIN_GROWTH_BYTES = 8 * 2 ** 20
/** the share of the last interval the loop may have been busy for a collection to be asked */
const QUIET_LOAD = 0.5

/**
 * When to ask for a collection, from the JS heap in use and the loop's load at
 * each tick: the heap grew by GROWTH (and MIN_GROWTH_BYTES) over what the last
 * asked collection left, or the least seen since, while the loop was quiet;
 * and again after one that freed MIN_GROWTH_BYTES, until one frees less.
 */
export class ReducePolicy {
  /** heap in use after the last collection asked for, or the least seen since */
  private floor = 0
  /** heap in use when a collection was asked for, until the next tick reads what it left */
  private askedAt?: number

  /** one tick: whether to ask now, and what the collection asked at the last tick freed */
  tick(used: number, load: number): { ask: boolean; freed: number } {
    if (this.askedAt !== undefined) {
      const freed = Math.max(0, this.askedAt - used)
      this.floor = used
      // One that freed a burst's worth is followed by another, as V8's own memory reducer runs
      // several: the first leaves pages part-empty that the next compacts and gives back.
      const again = freed >= MIN_GROWTH_BYTES && load < QUIET_LOAD
      this.askedAt = again ? used : undefined
      return { ask: again, freed }
    }
    if (this.floor === 0 || used < this.floor) this.floor = used
    else if (used - this.floor >= Math.max(MIN_GROWTH_BYTES, this.floor * GROWTH) && load < QUIET_LOAD) {
      this.askedAt = used
      return { ask: true, freed: 0 }
    }
    return { ask: false, freed: 0 }
  }
}

/** Every intervalMs (unref'd): a footprint-reducing collection when the JS heap grew while quiet, then malloc_trim; both counted. */
export class MemoryReleaser implements Startable {
  private timer?: NodeJS.Timeout
  private readonly trimmed
  private readonly trims
  private readonly reduced
  private readonly reduces
  private readonly policy = new ReducePolicy()

  constructor(
    metrics: Metrics,
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
  ) {
    const counter = (name: string, help: string) => metrics.counter({ name, help })
    this.trimmed = counter(
      'plexus_process_malloc_trim_bytes_total',
      'Resident memory given back to the kernel by the periodic malloc_trim (freed C heap pages glibc kept)',
    )
    this.trims = counter('plexus_process_malloc_trim_runs_total', 'Periodic malloc_trim runs')
    this.reduced = counter(
      'plexus_process_heap_reduce_bytes_total',
      'JS heap freed by the footprint-reducing collections asked of V8 when the heap grew while the agent was quiet',
    )
    this.reduces = counter(
      'plexus_process_heap_reduce_runs_total',
      'Footprint-reducing collections asked of V8 (moderate memory pressure)',
    )
  }

  async start(): Promise<void> {
    let addon: MemAddon
    try {
      addon = loadAddon<MemAddon>('plexus_mem', 'PLX_NATIVE_MEM_ADDON')
    } catch (err) {
      // a smaller RSS is not worth refusing to run for
      this.logger.warn({ err }, 'native memory release unavailable: freed memory stays with the process')
      return
    }
    const load = loopLoad(this.intervalMs / 2)
    this.timer = setInterval(() => this.tick(addon, load()), this.intervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
  }

  private tick(addon: MemAddon, load: number): void {
    const { ask, freed } = this.policy.tick(getHeapStatistics().used_heap_size, load)
    if (freed > 0) this.reduced.inc(freed)
    if (ask) {
      addon.reduce()
      this.reduces.inc()
    }
    const before = process.memoryUsage.rss()
    addon.trim()
    this.trims.inc()
    const gone = before - process.memoryUsage.rss()
    if (gone > 0) this.trimmed.inc(gone)
  }
}
