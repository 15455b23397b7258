import { readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import type { Logger } from '../lib/log.js'
import type { LocalStore, StoreSnapshot } from './store.js'

// Persistence by atomic snapshot rewrite (temp file, fsync, rename): the map
// is small (thousands of records), so rewriting it whole after a burst of
// changes is simpler than a write-ahead log and never leaves a torn file.

export const SNAPSHOT_FILE = 'store.json'
/** changes within this window share one rewrite */
const DEFAULT_DELAY_MS = 250

/** Reads <stateDir>/store.json. A damaged file is moved aside (peers resupply the data) rather than blocking start. */
export async function loadSnapshot(stateDir: string, logger: Logger): Promise<StoreSnapshot | undefined> {
  const file = join(stateDir, SNAPSHOT_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const s = JSON.parse(text) as StoreSnapshot
    if (s?.format !== 'plexus-store/1' || !Array.isArray(s.entries) || typeof s.watermarks !== 'object') {
      throw new Error('not a plexus-store/1 snapshot')
    }
    return s
  } catch (err) {
    const aside = `${file}.corrupt-${Date.now()}`
    await rename(file, aside)
    logger.error(
      { err, file, movedTo: aside },
      'store snapshot unreadable; starting empty, peers will resupply',
    )
    return undefined
  }
}

/** Rewrites the snapshot shortly after changes, and once more on stop. */
export class SnapshotWriter {
  private timer?: NodeJS.Timeout
  private writing: Promise<void> = Promise.resolve()
  private unsubscribe?: () => void

  constructor(
    private readonly store: LocalStore,
    private readonly stateDir: string,
    private readonly logger: Logger,
    private readonly delayMs = DEFAULT_DELAY_MS,
  ) {}

  start(): void {
    this.unsubscribe = this.store.onChange(() => {
      this.timer ??= setTimeout(() => {
        this.timer = undefined
        void this.flush()
      }, this.delayMs)
    })
  }

  /** Writes now; writes never overlap, so the last one carries the latest state. */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        const text = JSON.stringify(this.store.snapshot())
        await writeFileAtomic(join(this.stateDir, SNAPSHOT_FILE), text, 0o600)
      } catch (err) {
        this.logger.error({ err }, 'store snapshot write failed')
      }
    })
    return this.writing
  }

  async stop(): Promise<void> {
    this.unsubscribe?.()
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
  }
}
