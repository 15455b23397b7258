import { type FileHandle, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import type { Logger } from '../lib/log.js'
import type { LocalStore, StoreChanges, StoreSnapshot } from './store.js'
import type { Hlc, StoreRecord } from './types.js'

// Persistence as a snapshot plus an append-only journal. Rewriting the whole
// map after every burst (what this did first) cost O(map) per burst: at
// 20,000 records each rewrite took 0.2-1 s of CPU and disk on every host,
// and KV writes fell from 430/s to 120/s as the store grew. Now each burst
// appends one line (its changed records) and fsyncs it; the snapshot is
// rewritten only when the journal has grown as large as the snapshot, so the
// disk cost per write is constant (at most twice its record's size).
//
// Crash safety: a journal belongs to one snapshot generation
// (store-<gen>.journal next to a store.json carrying "generation": gen). A
// compaction writes the next generation's snapshot atomically (temp, fsync,
// rename) and only then removes the old journal, so any crash leaves a
// snapshot and the journal that continues it. A torn last line (a crash
// mid-append) was never fsynced, so it is dropped.

export const SNAPSHOT_FILE = 'store.json'
const JOURNAL_RE = /^store-(\d+)\.journal$/
export const journalFile = (generation: number) => `store-${generation}.journal`
/** changes within this window share one append (and one fsync) */
const DEFAULT_DELAY_MS = 10
/**
 * The window when every change is a record another host wrote: every host
 * holding it resupplies it after a crash, so its fsync may wait. An idle
 * 10-host cluster merges ten heartbeats a second; at 10 ms each was an
 * append and an fsync of its own.
 */
const DEFAULT_REPLICA_DELAY_MS = 500
/** the journal is folded into a new snapshot past max(this, the snapshot's size) */
const MIN_COMPACT_BYTES = 4 * 1024 * 1024
/** snapshot entries per piece written: keeps the event loop turning while a large map is saved */
const ENTRIES_PER_PIECE = 1000

interface SnapshotFile extends StoreSnapshot {
  /** which journal continues this snapshot (absent in files of earlier releases: 0) */
  generation?: number
}

/** One journal line: one batch of changes (StoreChanges, in short names). */
interface JournalLine {
  c: Hlc
  i: number
  e: [number, StoreRecord][]
  r: string[]
  m?: Record<string, Hlc>
}

export interface Loaded {
  snapshot?: StoreSnapshot
  generation: number
}

/**
 * Reads <stateDir>/store.json and replays its journal. A damaged snapshot (or
 * a damaged line inside the journal) is moved aside and the store starts
 * empty: peers resupply the data, which beats refusing to start.
 */
export async function loadSnapshot(stateDir: string, logger: Logger): Promise<Loaded> {
  const file = join(stateDir, SNAPSHOT_FILE)
  let snapshot: SnapshotFile | undefined
  try {
    snapshot = parseSnapshot(await readFile(file, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      await moveAside(file, err, logger)
      return { generation: await nextGeneration(stateDir) }
    }
  }
  const generation = snapshot?.generation ?? 0
  const journal = join(stateDir, journalFile(generation))
  let text: string
  try {
    text = await readFile(journal, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    return { snapshot, generation }
  }
  try {
    return { snapshot: replay(snapshot, text), generation }
  } catch (err) {
    await moveAside(journal, err, logger)
    if (snapshot) await moveAside(file, new Error('its journal is damaged'), logger)
    return { generation: await nextGeneration(stateDir) }
  }
}

function parseSnapshot(text: string): SnapshotFile {
  const s = JSON.parse(text) as SnapshotFile
  if (s?.format !== 'plexus-store/1' || !Array.isArray(s.entries) || typeof s.watermarks !== 'object') {
    throw new Error('not a plexus-store/1 snapshot')
  }
  if (s.generation !== undefined && !Number.isSafeInteger(s.generation)) throw new Error('bad generation')
  return s
}

/**
 * The snapshot with the journal's batches applied in order. Records are
 * signature-checked again when the store restores them, so a journal can
 * lose data but never add any.
 */
export function replay(base: StoreSnapshot | undefined, text: string): StoreSnapshot {
  const entries = new Map(base?.entries.map((e) => [e.record.key, e]))
  const out: StoreSnapshot = {
    format: 'plexus-store/1',
    clock: base?.clock ?? { wall: 0, logical: 0 },
    index: base?.index ?? 0,
    watermarks: base?.watermarks ?? {},
    entries: [],
  }
  const lines = text.split('\n')
  // the text ends with a newline after every complete batch; anything after the last one is a torn append
  lines.pop()
  for (const line of lines) {
    const j = JSON.parse(line) as JournalLine
    if (typeof j !== 'object' || !Array.isArray(j?.e) || !Array.isArray(j.r) || typeof j.i !== 'number')
      throw new Error('not a journal line')
    for (const [index, record] of j.e) entries.set(record.key, { index, record })
    for (const key of j.r) entries.delete(key)
    if (j.m) out.watermarks = j.m
    out.clock = j.c
    out.index = j.i
  }
  out.entries = [...entries.values()]
  return out
}

async function moveAside(file: string, err: unknown, logger: Logger): Promise<void> {
  const aside = `${file}.corrupt-${Date.now()}`
  await rename(file, aside)
  logger.error({ err, file, movedTo: aside }, 'store file unreadable; starting empty, peers will resupply')
}

/** A generation above any journal left in the directory, so none of them is ever taken for the new one's. */
async function nextGeneration(stateDir: string): Promise<number> {
  let max = -1
  for (const name of await readdir(stateDir).catch(() => [])) {
    const m = JOURNAL_RE.exec(name)
    if (m) max = Math.max(max, Number(m[1]))
  }
  return max + 1
}

/**
 * The snapshot as pieces of JSON text, made one at a time as writeFileAtomic
 * asks for them (records are immutable, so the state is the one of the tick
 * the snapshot was taken in); `size.bytes` counts what was made.
 */
function* snapshotPieces(s: SnapshotFile, size: { bytes: number }): Generator<string> {
  const { entries, ...head } = s
  const piece = (text: string) => {
    size.bytes += text.length
    return text
  }
  yield piece(`${JSON.stringify(head).slice(0, -1)},"entries":[`)
  for (let i = 0; i < entries.length; i += ENTRIES_PER_PIECE) {
    const part = entries.slice(i, i + ENTRIES_PER_PIECE).map((e) => JSON.stringify(e))
    yield piece((i > 0 ? ',' : '') + part.join(','))
  }
  yield piece(']}')
}

/** Appends each burst of changes to the journal, and compacts it into a new snapshot when it has grown. */
export class StoreJournal {
  private timer?: NodeJS.Timeout
  /** ms epoch the pending append runs at */
  private due = 0
  private writing: Promise<void> = Promise.resolve()
  private unsubscribe?: () => void
  private handle?: FileHandle
  private journalBytes = 0
  private snapshotBytes = 0

  constructor(
    private readonly store: LocalStore,
    private readonly stateDir: string,
    private generation: number,
    private readonly logger: Logger,
    private readonly opts: { delayMs?: number; replicaDelayMs?: number; minCompactBytes?: number } = {},
  ) {
    store.trackChanges()
  }

  /**
   * Starts a fresh generation from the loaded state (so a torn journal tail
   * or a file of an earlier release is never appended to), then journals.
   */
  async start(): Promise<void> {
    await this.run(() => this.compact())
    this.unsubscribe = this.store.onChange((own) =>
      this.schedule(
        own
          ? (this.opts.delayMs ?? DEFAULT_DELAY_MS)
          : (this.opts.replicaDelayMs ?? DEFAULT_REPLICA_DELAY_MS),
      ),
    )
  }

  /** An append within `ms`: a pending one is not put off, but brought forward by a change of our own. */
  private schedule(ms: number): void {
    const due = Date.now() + ms
    if (this.timer && due >= this.due) return
    clearTimeout(this.timer)
    this.due = due
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flush()
    }, ms)
  }

  /** Appends what changed; appends never overlap, so batches land in order. */
  flush(): Promise<void> {
    return this.run(async () => {
      const limit = Math.max(this.opts.minCompactBytes ?? MIN_COMPACT_BYTES, this.snapshotBytes)
      if (this.journalBytes > limit) return this.compact()
      const c = this.store.takeChanges()
      if (c.entries.length === 0 && c.removed.length === 0 && !c.watermarks) return
      const line = `${JSON.stringify(toLine(c))}\n`
      this.handle ??= await open(join(this.stateDir, journalFile(this.generation)), 'a', 0o600)
      await this.handle.write(line)
      await this.handle.sync()
      this.journalBytes += Buffer.byteLength(line)
    })
  }

  async stop(): Promise<void> {
    this.unsubscribe?.()
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
    await this.run(async () => {
      await this.handle?.close()
      this.handle = undefined
    })
  }

  private run(step: () => Promise<void>): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        await step()
      } catch (err) {
        this.logger.error({ err }, 'store journal write failed')
      }
    })
    return this.writing
  }

  /** The whole map as the next generation's snapshot; then the old journal goes. */
  private async compact(): Promise<void> {
    this.store.takeChanges() // in the snapshot taken on the next line, in the same tick
    const next = this.generation + 1
    const size = { bytes: 0 }
    const pieces = snapshotPieces({ ...this.store.snapshot(), generation: next }, size)
    await writeFileAtomic(join(this.stateDir, SNAPSHOT_FILE), pieces, 0o600)
    await this.handle?.close()
    this.handle = undefined
    const old = this.generation
    this.generation = next
    this.snapshotBytes = size.bytes
    this.journalBytes = 0
    for (const name of await readdir(this.stateDir)) {
      const m = JOURNAL_RE.exec(name)
      if (m && Number(m[1]) <= old) await rm(join(this.stateDir, name), { force: true })
    }
  }
}

function toLine(c: StoreChanges): JournalLine {
  const line: JournalLine = {
    c: c.clock,
    i: c.index,
    e: c.entries.map((e) => [e.index, e.record]),
    r: c.removed,
  }
  if (c.watermarks) line.m = c.watermarks
  return line
}
