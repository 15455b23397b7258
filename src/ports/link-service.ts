import { constants } from 'node:fs'
import { open, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { appApiEnv } from '../ipam/leases.js'
import { excerpt, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { endpointCodec, healthCodec, serviceCodec } from '../store/codecs.js'
import { ENDPOINT_PREFIX, HEALTH_PREFIX, type ReadableStore, SERVICE_PREFIX } from '../store/types.js'
import { type LinkEntry, LinkTable } from './link-table.js'
import {
  hostsFileProblem,
  type LinkSpec,
  type LinkTarget,
  linkEnv,
  linkHostsLines,
  resolveLinkTarget,
  withLinkBlock,
} from './links.js'
import { type PortsMetrics, portsMetrics } from './metrics.js'

export interface LinkComponents {
  config: { name: string; stateDir: string; api?: { appPort?: number } }
  /** this host's peer id: its lease names the gateway where the application API listens */
  peerId: string
  logger: Logger
  metrics: Metrics
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
  private readonly metrics: PortsMetrics

  constructor(private readonly c: LinkComponents) {
    this.table = new LinkTable(join(c.config.stateDir, 'links.json'))
    this.metrics = portsMetrics(c.metrics)
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
    const endpoints = s.list(ENDPOINT_PREFIX).flatMap((r) => {
      const value = endpointCodec.valueOf(r)
      return value ? [{ key: r.key, value }] : []
    })
    const health = s.list(HEALTH_PREFIX).flatMap((r) => healthCodec.valueOf(r) ?? [])
    const services = s.list(SERVICE_PREFIX).flatMap((r) => serviceCodec.valueOf(r) ?? [])
    return resolveLinkTarget(target, endpoints, health, services, this.c.config.name)
  }

  /** Docker's variables of the link, and PLEXUS_HTTP_ADDR: a linked container is told where its agent's API is */
  env(container: string, link: LinkSpec): Record<string, string> | undefined {
    const t = this.resolve(link.target)
    if (!t) return undefined
    return {
      ...linkEnv(container, link, t),
      ...appApiEnv(this.c.store, this.c.peerId, this.c.config.api?.appPort),
    }
  }

  list(container?: string): ResolvedLink[] {
    return this.table.list(container).map((e) => ({ ...e, resolved: this.resolve(e.target) ?? null }))
  }

  async add(entry: LinkEntry): Promise<ResolvedLink> {
    if (entry.hostsFile) {
      const problem = this.hostsFileProblem(entry.container, entry.hostsFile)
      if (problem) {
        throw new PlexusError('PLX_LINK_HOSTS_FILE_REFUSED', `hosts file for ${entry.container} ${problem}`, {
          status: 403,
        })
      }
      await noSymlinkOn(entry.hostsFile)
    }
    await this.table.set(entry)
    await this.syncHostsFiles()
    return { ...entry, resolved: this.resolve(entry.target) ?? null }
  }

  async remove(container: string, alias?: string): Promise<LinkEntry[]> {
    const gone = await this.table.remove(container, alias)
    await this.syncHostsFiles()
    return gone
  }

  /**
   * Why the agent may not keep `file` as `container`'s hosts file, or
   * undefined: the container must have an endpoint on this host and the file
   * must be one of its own (links.ts hostsFileProblem).
   */
  private hostsFileProblem(container: string, file: string): string | undefined {
    const mine = this.c.store
      .list(`${ENDPOINT_PREFIX}${this.c.store.self}/`)
      .flatMap((r) => endpointCodec.valueOf(r) ?? [])
      .filter((ep) => ep.name === container)
    if (!mine.length) return 'refused: no container of that name has an endpoint on this host'
    const problems = mine.map((ep) => hostsFileProblem(file, ep))
    return problems.includes(undefined) ? undefined : `refused: ${excerpt(file, 200)} ${problems[0]}`
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
        // re-checked on every write: a container that is gone no longer owns its path
        if (e.hostsFile && this.hostsFileProblem(e.container, e.hostsFile)) {
          this.metrics.linkHostsUpdates.inc({ result: 'refused' })
          continue
        }
        if (e.hostsFile) byFile.set(e.hostsFile, [...(byFile.get(e.hostsFile) ?? []), e])
      }
      for (const [file, entries] of byFile) {
        const lines = linkHostsLines(entries.map((link) => ({ link, target: this.resolve(link.target) })))
        try {
          if (await rewriteInPlace(file, (text) => withLinkBlock(text, lines)))
            this.metrics.linkHostsUpdates.inc({ result: 'updated' })
        } catch (err) {
          // one container's bad file must not stop the others' updates
          this.metrics.linkHostsUpdates.inc({ result: 'refused' })
          this.c.logger.warn({ err, file }, 'links: hosts file not updated')
        }
      }
    })
    return this.running
  }
}

/** Refuses a path with a symbolic link on it (a missing file passes: it is skipped until it exists). */
async function noSymlinkOn(file: string): Promise<void> {
  let real: string
  try {
    real = await realpath(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (real !== file) {
    throw new PlexusError(
      'PLX_LINK_HOSTS_FILE_REFUSED',
      `${excerpt(file, 200)}: a symbolic link lies on the path`,
      {
        status: 403,
      },
    )
  }
}

/**
 * A container's hosts file is bind-mounted into its mount namespace, so it must
 * keep its inode: rewrite it in place (a rename would leave the container on
 * the old file). Returns whether anything changed; a missing file is skipped.
 * The path was checked as text (hostsFileProblem), so no symlink may lie on
 * it: realpath must give it back unchanged, and the last step is opened
 * O_NOFOLLOW, so a link swapped in between is refused too.
 */
async function rewriteInPlace(file: string, edit: (text: string) => string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    await noSymlinkOn(file)
    fh = await open(file, constants.O_RDWR | constants.O_NOFOLLOW)
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
