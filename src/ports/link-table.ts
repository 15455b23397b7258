import { mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import type { LinkSpec } from './links.js'

/** A link registered on this host: container `container` sees `target` as `alias`. */
export interface LinkEntry extends LinkSpec {
  container: string
  /** hosts file of the linking container that Plexus keeps current (optional) */
  hostsFile?: string
}

/**
 * Links live only on the linking container's host (the env and the hosts file
 * are local), so they are persisted here rather than replicated.
 */
export class LinkTable {
  private entries: LinkEntry[]

  constructor(private readonly file: string) {
    this.entries = LinkTable.read(file)
  }

  private static read(file: string): LinkEntry[] {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as { links?: LinkEntry[] }
      return Array.isArray(data.links) ? data.links : []
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
  }

  list(container?: string): LinkEntry[] {
    return this.entries.filter((e) => container === undefined || e.container === container)
  }

  async set(entry: LinkEntry): Promise<void> {
    this.entries = [
      ...this.entries.filter((e) => !(e.container === entry.container && e.alias === entry.alias)),
      entry,
    ]
    await this.save()
  }

  /** Removes one alias, or every link of the container; returns what was removed. */
  async remove(container: string, alias?: string): Promise<LinkEntry[]> {
    const gone = this.entries.filter(
      (e) => e.container === container && (alias === undefined || e.alias === alias),
    )
    if (gone.length) {
      this.entries = this.entries.filter((e) => !gone.includes(e))
      await this.save()
    }
    return gone
  }

  private async save(): Promise<void> {
    mkdirSync(dirname(this.file), { recursive: true })
    await writeFileAtomic(this.file, `${JSON.stringify({ links: this.entries }, null, 2)}\n`, 0o600)
  }
}
