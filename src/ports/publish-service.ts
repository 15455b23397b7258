// Published ports on this host (components.ports): admission and the
// listing. The endpoint records of this host are the truth: the datapath
// renders the `ports` firewall section and its switches from them on every
// pass (publishedPortRules, publish.ts), so rules go away with the record on
// CNI DEL and come back from the store after a restart. New mappings (CNI
// ADD, the API) are admitted one at a time: validated, checked against the
// other containers' ports and the host's own sockets, hostPort 0 chosen;
// the caller writes the record and waits for the datapath to apply it.

import { checkSpec } from '../datapath/firewall/model.js'
import { BRIDGE_NAME } from '../datapath/model.js'
import type { HostSockets } from '../datapath/sockets.js'
import { parseLease } from '../ipam/leases.js'
import type { LeaseComponent } from '../ipam/manager.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { endpointCodec } from '../store/codecs.js'
import type { EndpointValue, PublishedPort } from '../store/records.js'
import {
  ENDPOINT_PREFIX,
  type JsonValue,
  LEASE_PREFIX,
  type Store,
  type StoreRecord,
} from '../store/types.js'
import { hostAddresses } from './host.js'
import { type PortsMetrics, portsMetrics, publishedPortsGauge } from './metrics.js'
import type { HeldPort, PortsConfig } from './publish.js'
import {
  checkRange,
  conflictError,
  type EndpointEntry,
  endpointEntry,
  exhaustedError,
  heldByEndpoints,
  mappingsOf,
  overlaps,
  type PortRow,
  type PublishRequest,
  planPublish,
  portRows,
  publishedPortRules,
  validatePublish,
} from './publish.js'

/** how long an admitted mapping waits for its record before it no longer holds its port (the ADD failed after admit) */
const PENDING_TTL_MS = 30_000

export interface PortComponents {
  config: { ports: PortsConfig }
  logger: Logger
  metrics: Metrics
  peerId: string
  store: Store
  lease: Pick<LeaseComponent, 'current'>
  /**
   * The datapath: its pass loop (a mapping the API wrote is answered once its
   * rules are in the kernel) and the host's socket table admission reads.
   */
  datapath: { converged(index: number): Promise<void>; sockets: HostSockets }
}

export interface UnpublishRequest {
  hostPort: number
  protocol: string
  hostIp?: string
}

interface Pending {
  value: EndpointValue
  /** the record's modify index when admitted: any later change to the record supersedes this */
  index: number
  since: number
}

export class PortService implements Startable {
  private readonly range: [number, number]
  private readonly log: Logger
  private readonly pending = new Map<string, Pending>()
  /** admissions run one at a time: two ADDs never get the same port */
  private queue: Promise<unknown> = Promise.resolve()
  private readonly metrics: PortsMetrics
  private shadowedSeen = ''
  private unwatch?: () => void

  constructor(private readonly c: PortComponents) {
    this.range = checkRange(c.config.ports.range)
    this.log = c.logger.child({ component: 'ports' })
    this.metrics = portsMetrics(c.metrics)
    publishedPortsGauge(c.metrics, () => mappingsOf(this.ownEndpoints()).mappings.length)
  }

  start(): Promise<void> {
    this.unwatch = this.c.store.watch(`${ENDPOINT_PREFIX}${this.c.peerId}/`, () => this.reportShadowed())
    this.reportShadowed()
    return Promise.resolve()
  }

  async stop(): Promise<void> {
    this.unwatch?.()
    await this.queue.catch(() => undefined)
    // The rules stay, like the rest of the datapath's: published ports keep working across an agent restart.
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return run
  }

  /** Mappings that records from a restart or an operator's edit put on a port an older one holds: left out by the rules. */
  private reportShadowed(): void {
    const { shadowed } = mappingsOf(this.ownEndpoints())
    const seen = JSON.stringify(shadowed)
    if (shadowed.length && seen !== this.shadowedSeen) {
      this.metrics.shadowed.inc(shadowed.length)
      this.log.warn({ shadowed }, 'ports: mappings overlapping an older one are not applied')
    }
    this.shadowedSeen = seen
  }

  // ---- reading the store ----

  private endpoints(prefix: string): (EndpointEntry & { owner: string })[] {
    return this.c.store.list(prefix).flatMap((r: StoreRecord) => endpointEntry(r) ?? [])
  }

  private ownEndpoints(): EndpointEntry[] {
    return this.endpoints(`${ENDPOINT_PREFIX}${this.c.peerId}/`)
  }

  /** this host's endpoints, with admitted mappings standing in for records not written yet */
  private localEndpoints(): EndpointEntry[] {
    const now = Date.now()
    for (const [key, p] of this.pending) {
      if (this.c.store.modifyIndex(key) !== p.index || now - p.since > PENDING_TTL_MS)
        this.pending.delete(key)
    }
    const byKey = new Map<string, EndpointEntry>(this.ownEndpoints().map((e) => [e.key, e]))
    for (const [key, p] of this.pending) byKey.set(key, { key, value: p.value })
    return [...byKey.values()]
  }

  /** Waits until the datapath has applied the store as it is now (the record just written). */
  private converged(): Promise<void> {
    return this.c.datapath.converged(this.c.store.index)
  }

  // ---- admitting new mappings ----

  private async admit(
    key: string,
    value: EndpointValue,
    requests: PublishRequest[],
    kept: PublishedPort[],
  ): Promise<PublishedPort[]> {
    const asked = validatePublish(requests, hostAddresses())
    const others = heldByEndpoints(this.localEndpoints(), key)
    const own = heldByEndpoints([{ key: '', value: { ...value, published: kept } }])
    const host = (await this.c.datapath.sockets.bound()).map(
      (b): HeldPort => ({ ...b, holder: { kind: 'process' } }),
    )
    const plan = planPublish(asked, [...others, ...own, ...host], this.range)
    if ('exhausted' in plan) throw exhaustedError(plan.exhausted, this.range)
    if ('conflict' in plan) {
      const { port, held } = plan.conflict
      this.metrics.conflicts.inc()
      if (held.holder.kind === 'process')
        held.holder.description = await this.c.datapath.sockets.holder(port.hostPort, port.protocol)
      throw conflictError(port, held)
    }
    const admitted = { ...value, published: [...kept, ...plan.ok] }
    const endpoints = [...this.localEndpoints().filter((e) => e.key !== key), { key, value: admitted }]
    const subnet = this.c.lease.current()?.subnet
    if (subnet) {
      // what the datapath will render once the record is written: refused here, before anything is
      const { section } = publishedPortRules({
        subnet,
        bridge: BRIDGE_NAME,
        endpoints: endpoints.map((e) => ({
          key: e.key,
          owner: this.c.peerId,
          value: e.value as unknown as JsonValue,
        })),
      })
      const problems = checkSpec({ sections: [section] })
      if (problems.length)
        throw new PlexusError('PLX_FIREWALL_INVALID', `firewall section refused: ${problems.join('; ')}`, {
          problems,
        })
    }
    this.pending.set(key, { value: admitted, index: this.c.store.modifyIndex(key), since: Date.now() })
    return plan.ok
  }

  /**
   * CNI ADD, before the endpoint record is written: checks the record's
   * published ports and picks hostPort 0; they hold their host ports until
   * the record is written (or 30 s). Returns the ports as the record should
   * store them; the datapath applies their rules from the record.
   */
  reserve(key: string, value: EndpointValue): Promise<PublishedPort[]> {
    return this.serial(() => this.admit(key, value, value.published ?? [], []))
  }

  private findLocal(container: string): { entry: EndpointEntry; index: number } {
    const mine = this.endpoints(`${ENDPOINT_PREFIX}${this.c.peerId}/`)
    const exact = mine.filter((e) => e.value.name === container || e.value.containerId === container)
    const found = exact.length ? exact : mine.filter((e) => e.value.containerId.startsWith(container))
    const entry = found.sort((a, b) => a.key.localeCompare(b.key))[0]
    if (entry && new Set(found.map((e) => e.value.containerId)).size === 1)
      return { entry, index: this.c.store.modifyIndex(entry.key) }
    if (found.length)
      throw new PlexusError('PLX_PORTS_AMBIGUOUS', `"${container}" matches several containers`, {
        status: 400,
      })
    const elsewhere = this.endpoints(ENDPOINT_PREFIX).find(
      (e) => e.value.name === container || e.value.containerId === container,
    )
    throw new PlexusError(
      'PLX_PORTS_UNKNOWN_CONTAINER',
      elsewhere
        ? `container "${container}" runs on host ${elsewhere.value.host}: publish its ports there`
        : `no container "${container}" on this host`,
      { status: 404 },
    )
  }

  private async write(key: string, value: EndpointValue, index: number): Promise<void> {
    const encoded = endpointCodec.encode(value)
    try {
      await this.c.store.put(key, encoded, { cas: index })
    } catch (err) {
      throw new PlexusError(
        'PLX_PORTS_RETRY',
        `the container's record changed meanwhile (${errorMessage(err)}); try again`,
        { status: 409 },
      )
    }
  }

  /** `plexctl port publish`: adds one mapping to a running container of this host. */
  publish(container: string, req: PublishRequest): Promise<PortRow> {
    return this.serial(async () => {
      const { entry, index } = this.findLocal(container)
      const kept = entry.value.published ?? []
      const [added] = await this.admit(entry.key, entry.value, [req], kept)
      const value = { ...entry.value, published: [...kept, added as PublishedPort] }
      try {
        await this.write(entry.key, value, index)
      } finally {
        this.pending.delete(entry.key)
      }
      try {
        await this.converged()
      } catch (err) {
        // the kernel kept the previous rules: so does the record, and the port is free again
        await this.write(entry.key, entry.value, this.c.store.modifyIndex(entry.key)).catch(() => undefined)
        throw err
      }
      const row = this.rows().find(
        (r) => r.containerId === value.containerId && overlaps(r, added as PublishedPort),
      )
      return row as PortRow
    })
  }

  /** `plexctl port unpublish`: removes the container's mappings on that host port. */
  unpublish(container: string, req: UnpublishRequest): Promise<PublishedPort[]> {
    return this.serial(async () => {
      const { entry, index } = this.findLocal(container)
      const target = { hostPort: req.hostPort, protocol: req.protocol.toLowerCase(), hostIp: req.hostIp }
      const all = entry.value.published ?? []
      const gone = all.filter(
        (p) =>
          p.hostPort === target.hostPort &&
          p.protocol === target.protocol &&
          (!target.hostIp || p.hostIp === target.hostIp),
      )
      if (!gone.length)
        throw new PlexusError(
          'PLX_PORTS_NOT_PUBLISHED',
          `container "${entry.value.name}" has no ${target.hostIp ?? '0.0.0.0'}:${req.hostPort}/${target.protocol} published`,
          { status: 404 },
        )
      const value: EndpointValue = { ...entry.value, published: all.filter((p) => !gone.includes(p)) }
      if (!value.published?.length) delete value.published
      await this.write(entry.key, value, index)
      await this.converged()
      return gone
    })
  }

  // ---- listing ----

  /** Every published port in the cluster as this host's store sees it. */
  rows(): PortRow[] {
    const addresses = new Map(
      this.c.store.list(LEASE_PREFIX).flatMap((r) => {
        const parsed = parseLease(r)
        return 'lease' in parsed ? [[r.owner, parsed.lease.publicIp] as const] : []
      }),
    )
    return portRows(
      this.endpoints(ENDPOINT_PREFIX),
      this.c.peerId,
      (owner) => addresses.get(owner) ?? undefined,
    )
  }
}
