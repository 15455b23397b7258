import type { Logger } from './log.js'
import type { Metrics } from './metrics.js'
import { loadAddon } from './native.js'
import type { Startable } from './startable.js'

// Gives the C heap's freed pages back to the kernel now and then (glibc's
// malloc_trim, through native/mem.c). glibc returns only the top of its heap
// by itself; what V8, libuv and Buffers free below it stays in the process.
// After a write burst, an agent holding 30,000 registrations kept 50–70 MB of
// such free memory (RSS 329 MB, 256 MB after one malloc_trim; heap and
// external memory unchanged): what an operator sees as the agent's size
// was a fifth free memory. A trim costs milliseconds; the pages it gives
// back are faulted in again when next used.

interface MemAddon {
  trim(): boolean
}

/** Runs malloc_trim every intervalMs (unref'd); counts the runs and the RSS they gave back. */
export class MallocTrimmer implements Startable {
  private timer?: NodeJS.Timeout
  private readonly returned
  private readonly runs

  constructor(
    metrics: Metrics,
    private readonly logger: Logger,
    private readonly intervalMs = 30_000,
  ) {
    this.returned = metrics.counter({
      name: 'plexus_process_malloc_trim_bytes_total',
      help: 'Resident memory given back to the kernel by the periodic malloc_trim (freed C heap pages glibc kept)',
    })
    this.runs = metrics.counter({
      name: 'plexus_process_malloc_trim_runs_total',
      help: 'Periodic malloc_trim runs',
    })
  }

  async start(): Promise<void> {
    let addon: MemAddon
    try {
      addon = loadAddon<MemAddon>('plexus_mem', 'PLX_NATIVE_MEM_ADDON')
    } catch (err) {
      // a smaller RSS is not worth refusing to run for
      this.logger.warn({ err }, 'malloc_trim unavailable: freed C heap stays with the process')
      return
    }
    this.timer = setInterval(() => this.trim(addon), this.intervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
  }

  private trim(addon: MemAddon): void {
    const before = process.memoryUsage.rss()
    addon.trim()
    this.runs.inc()
    const gone = before - process.memoryUsage.rss()
    if (gone > 0) this.returned.inc(gone)
  }
}
