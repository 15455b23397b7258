import { open } from 'node:fs/promises'
import { join } from 'node:path'
import type { Counters } from '../lib/counters.js'
import type { Logger } from '../lib/log.js'
import type { Startable } from '../lib/startable.js'
import { isEndpointValue, isHealthValue, isServiceValue } from '../services/model.js'
import { ENDPOINT_PREFIX, HEALTH_PREFIX, type ReadableStore, SERVICE_PREFIX } from '../store/types.js'
import { type LinkEntry, LinkTable } from './link-table.js'
import {
  type LinkSpec,
  type LinkTarget,
  linkEnv,
  linkHostsLines,
  resolveLinkTarget,
  withLinkBlock,
} from './links.js'

export interface LinkComponents {
  config: { name: string; stateDir: string }
  logger: Logger
  counters: Counters
  store: ReadableStore
}

export interface ResolvedLink extends LinkEntry {
  resolved: LinkTarget | null
}

/**
 * Keeps linked containers' hosts files pointing at where their targets are now
 * (unlike Docker, whose entries go stale when a target moves), and answers
 * the env a link gives.
 */
export class LinkService implements Startable {
  private readonly table: LinkTable
  private unwatch: (() => void)[] = []
  private timer?: NodeJS.Timeout
  private running = Promise.resolve()

  constructor(private readonly c: LinkComponents) {
    this.table = new LinkTable(join(c.config.stateDir, 'links.json'))
  }

  async start(): Promise<void> {
    const kick = () => this.schedule()
    this.unwatch = [ENDPOINT_PREFIX, HEALTH_PREFIX, SERVICE_PREFIX].map((p) => this.c.store.watch(p, kick))
    await this.syncHostsFiles()
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch) u()
    clearTimeout(this.timer)
    await this.running
  }

  resolve(target: string): LinkTarget | undefined {
    const s = this.c.store
    // gossip input: records that fail their schema are left out, never trusted
    const endpoints = s
      .list(ENDPOINT_PREFIX)
      .flatMap((r) => (isEndpointValue(r.value) ? [{ key: r.key, value: r.value }] : []))
    const health = s.list(HEALTH_PREFIX).flatMap((r) => (isHealthValue(r.value) ? [r.value] : []))
    const services = s.list(SERVICE_PREFIX).flatMap((r) => (isServiceValue(r.value) ? [r.value] : []))
    return resolveLinkTarget(target, endpoints, health, services, this.c.config.name)
  }

  env(container: string, link: LinkSpec): Record<string, string> | undefined {
    const t = this.resolve(link.target)
    return t ? linkEnv(container, link, t) : undefined
  }

  list(container?: string): ResolvedLink[] {
    return this.table.list(container).map((e) => ({ ...e, resolved: this.resolve(e.target) ?? null }))
  }

  async add(entry: LinkEntry): Promise<ResolvedLink> {
    await this.table.set(entry)
    await this.syncHostsFiles()
    return { ...entry, resolved: this.resolve(entry.target) ?? null }
  }

  async remove(container: string, alias?: string): Promise<LinkEntry[]> {
    const gone = await this.table.remove(container, alias)
    await this.syncHostsFiles()
    return gone
  }

  private schedule(): void {
    clearTimeout(this.timer)
    // Coalesce bursts of store changes (a host joining brings many records at once).
    this.timer = setTimeout(() => {
      this.syncHostsFiles().catch((err) => this.c.logger.warn({ err }, 'links: hosts file update failed'))
    }, 100)
  }

  /** Rewrites each linking container's managed hosts block; serialized so writes never interleave. */
  private syncHostsFiles(): Promise<void> {
    this.running = this.running.then(async () => {
      const byFile = new Map<string, LinkEntry[]>()
      for (const e of this.table.list()) {
        if (e.hostsFile) byFile.set(e.hostsFile, [...(byFile.get(e.hostsFile) ?? []), e])
      }
      for (const [file, entries] of byFile) {
        const lines = linkHostsLines(entries.map((link) => ({ link, target: this.resolve(link.target) })))
        if (await rewriteInPlace(file, (text) => withLinkBlock(text, lines)))
          this.c.counters.inc('links.hosts_updated')
      }
    })
    return this.running
  }
}

/**
 * A container's hosts file is bind-mounted into its mount namespace, so it must
 * keep its inode: rewrite it in place (a rename would leave the container on
 * the old file). Returns whether anything changed; a missing file is skipped.
 */
async function rewriteInPlace(file: string, edit: (text: string) => string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(file, 'r+')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
  try {
    const text = await fh.readFile('utf8')
    const next = edit(text)
    if (next === text) return false
    await fh.truncate(0)
    await fh.write(next, 0, 'utf8')
    return true
  } finally {
    await fh.close()
  }
}
