// This host's attachments on disk, written (fsync + rename) before ADD answers
// and before DEL finishes. The replicated store writes its snapshot a moment
// after a change, so an agent killed right after answering ADD could come back
// without the record; the journal is how it knows the attachment is real and
// puts the record back (see EndpointService.recover).
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { PlexusError } from '../lib/errors.js'
import { writeFileAtomic } from '../lib/fs.js'
import type { EndpointValue } from '../store/records.js'

export class EndpointJournal {
  private queue: Promise<unknown> = Promise.resolve()

  private constructor(
    readonly file: string,
    private entries: Map<string, EndpointValue>,
  ) {}

  static async open(file: string): Promise<EndpointJournal> {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new EndpointJournal(file, new Map())
      throw err
    }
    let data: unknown
    try {
      data = JSON.parse(text)
    } catch (err) {
      throw new PlexusError('PLX_ENDPOINTS_JOURNAL_CORRUPT', `${file}: not JSON (${(err as Error).message})`)
    }
    const d = data as { version?: unknown; endpoints?: unknown }
    if (d?.version !== 1 || typeof d.endpoints !== 'object' || d.endpoints === null) {
      throw new PlexusError('PLX_ENDPOINTS_JOURNAL_CORRUPT', `${file}: not a version 1 endpoint journal`)
    }
    return new EndpointJournal(file, new Map(Object.entries(d.endpoints as Record<string, EndpointValue>)))
  }

  get(key: string): EndpointValue | undefined {
    return this.entries.get(key)
  }

  list(): [string, EndpointValue][] {
    return [...this.entries.entries()]
  }

  set(key: string, value: EndpointValue): Promise<void> {
    return this.write((m) => m.set(key, value))
  }

  delete(key: string): Promise<void> {
    if (!this.entries.has(key)) return Promise.resolve()
    return this.write((m) => m.delete(key))
  }

  /** One write at a time, each on disk before its caller continues. */
  private write(change: (m: Map<string, EndpointValue>) => void): Promise<void> {
    const run = this.queue.then(async () => {
      const next = new Map(this.entries)
      change(next)
      const body = { version: 1, endpoints: Object.fromEntries(next) }
      await writeFileAtomic(this.file, `${JSON.stringify(body)}\n`, 0o600)
      this.entries = next
    })
    this.queue = run.catch(() => undefined)
    return run
  }
}
