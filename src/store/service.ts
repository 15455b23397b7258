import type { Logger } from '../lib/log.js'
import { loadSnapshot, StoreJournal } from './persist.js'
import { LocalStore, type StoreOptions } from './store.js'

export const DEFAULT_SWEEP_INTERVAL_MS = 1000

/** The local store with its effects: snapshot and journal on disk, and the expiry sweep timer. */
export class StoreService {
  private timer?: NodeJS.Timeout

  private constructor(
    readonly store: LocalStore,
    private readonly writer: StoreJournal,
    private readonly sweepIntervalMs: number,
  ) {}

  /** Loads <stateDir>/store.json and its journal (if any) into a LocalStore. */
  static async open(
    opts: StoreOptions & { stateDir: string; logger: Logger; sweepIntervalMs?: number },
  ): Promise<StoreService> {
    const { snapshot, generation } = await loadSnapshot(opts.stateDir, opts.logger)
    const store = new LocalStore(opts, snapshot)
    opts.logger.info({ records: snapshot?.entries.length ?? 0, index: store.index }, 'store loaded')
    const writer = new StoreJournal(store, opts.stateDir, generation, opts.logger)
    return new StoreService(store, writer, opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS)
  }

  async start(): Promise<void> {
    await this.writer.start()
    this.store.sweep()
    this.timer = setInterval(() => this.store.sweep(), this.sweepIntervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.writer.stop()
  }
}
