// Published ports on this host (components.ports). The endpoint records of
// this host are the truth: the `ports` firewall section is reconciled from
// them on every change under endpoints/<self>/ and on a timer, so rules go
// away with the record on CNI DEL. New mappings (CNI ADD, the API) are
// admitted one at a time: validated, checked against the other containers'
// ports and the host's own sockets, hostPort 0 chosen, and their rules
// applied before the caller writes the record; a refusal leaves nothing.

import type { DatapathConfig } from '../datapath/config.js'
import { BRIDGE_NAME } from '../datapath/model.js'
import type { DatapathComponent } from '../datapath/service.js'
import type { LeaseComponent } from '../ipam/manager.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { isEndpointValue } from '../services/model.js'
import type { EndpointValue, LeaseValue, PublishedPort } from '../store/records.js'
import {
  ENDPOINT_PREFIX,
  type JsonValue,
  LEASE_PREFIX,
  type Store,
  type StoreRecord,
} from '../store/types.js'
import { describeSocketHolder, hostAddresses, hostSockets, setHairpin, setRouteLocalnet } from './host.js'
import { type PortsMetrics, portsMetrics, publishedPortsGauge } from './metrics.js'
import type { PortsConfig } from './publish.js'
import {
  checkRange,
  conflictError,
  type EndpointEntry,
  exhaustedError,
  hairpinVeths,
  heldByEndpoints,
  mappingsOf,
  overlaps,
  type PortRow,
  type PublishRequest,
  planPublish,
  portRows,
  portsSection,
  validatePublish,
} from './publish.js'

/** how long an admitted mapping waits for its record before its rules are dropped (the ADD failed after admit) */
const PENDING_TTL_MS = 30_000

export interface PortComponents {
  config: { ports: PortsConfig; datapath: Pick<DatapathConfig, 'reconcileIntervalMs'> }
  logger: Logger
  metrics: Metrics
  peerId: string
  store: Store
  lease: Pick<LeaseComponent, 'current' | 'on' | 'off'>
  datapath: Pick<DatapathComponent, 'setFirewallSection'>
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

/** an endpoint record of this host's or another's, checked as gossip input */
function isEndpoint(r: StoreRecord): boolean {
  return isEndpointValue(r.value) && r.key.startsWith(`${ENDPOINT_PREFIX}${r.owner}/`)
}

export class PortService implements Startable {
  private readonly range: [number, number]
  private readonly log: Logger
  private readonly pending = new Map<string, Pending>()
  /** admissions and reconciles run one at a time: two ADDs never get the same port */
  private queue: Promise<unknown> = Promise.resolve()
  private scheduled = false
  private applied?: string
  /** host ports in the section last applied (the published-ports gauge) */
  private appliedMappings = 0
  private readonly metrics: PortsMetrics
  private shadowedSeen = ''
  private timer?: NodeJS.Timeout
  private readonly unwatch: (() => void)[] = []

  constructor(private readonly c: PortComponents) {
    this.range = checkRange(c.config.ports.range)
    this.log = c.logger.child({ component: 'ports' })
    this.metrics = portsMetrics(c.metrics)
    publishedPortsGauge(c.metrics, () => this.appliedMappings)
  }

  async start(): Promise<void> {
    const kick = () => this.schedule()
    this.unwatch.push(
      this.c.store.watch(`${ENDPOINT_PREFIX}${this.c.peerId}/`, kick),
      this.c.store.watch(`${LEASE_PREFIX}${this.c.peerId}`, kick),
    )
    for (const ev of ['acquired', 'changed'] as const) {
      this.c.lease.on(ev, kick)
      this.unwatch.push(() => this.c.lease.off(ev, kick))
    }
    this.timer = setInterval(kick, this.c.config.datapath.reconcileIntervalMs)
    this.timer.unref()
    await this.reconcile().catch((err) =>
      this.log.warn({ err: errorMessage(err) }, 'ports: first pass failed'),
    )
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    for (const u of this.unwatch.splice(0)) u()
    await this.queue.catch(() => undefined)
    // The rules stay, like the datapath's: published ports keep working across an agent restart.
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return run
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    void this.serial(async () => {
      this.scheduled = false
      await this.apply()
    }).catch((err) => {
      this.metrics.firewallUpdates.inc({ result: 'failed' })
      this.log.warn({ err: errorMessage(err) }, 'ports: firewall update failed; retrying on the timer')
    })
  }

  // ---- reading the store ----

  private endpoints(prefix: string): (EndpointEntry & { owner: string })[] {
    return this.c.store
      .list(prefix)
      .flatMap((r) =>
        isEndpoint(r) ? [{ key: r.key, owner: r.owner, value: r.value as unknown as EndpointValue }] : [],
      )
  }

  /** this host's endpoints, with admitted mappings standing in for records not written yet */
  private localEndpoints(): EndpointEntry[] {
    const now = Date.now()
    for (const [key, p] of this.pending) {
      if (this.c.store.modifyIndex(key) !== p.index || now - p.since > PENDING_TTL_MS)
        this.pending.delete(key)
    }
    const byKey = new Map<string, EndpointEntry>(
      this.endpoints(`${ENDPOINT_PREFIX}${this.c.peerId}/`).map((e) => [e.key, e]),
    )
    for (const [key, p] of this.pending) byKey.set(key, { key, value: p.value })
    return [...byKey.values()]
  }

  // ---- converging the firewall ----

  /** Makes the `ports` section match this host's endpoints; skips the datapath when nothing changed. */
  private async apply(): Promise<void> {
    const lease = this.c.lease.current()
    if (!lease) return // no lease, no endpoints: nothing to publish yet
    const endpoints = this.localEndpoints()
    const { mappings, shadowed } = mappingsOf(endpoints)
    const seen = JSON.stringify(shadowed)
    if (shadowed.length && seen !== this.shadowedSeen) {
      this.metrics.shadowed.inc(shadowed.length)
      this.log.warn({ shadowed }, 'ports: mappings overlapping an older one are not applied')
    }
    this.shadowedSeen = seen
    const section = portsSection({ subnet: lease.subnet, bridge: BRIDGE_NAME, mappings })
    const text = JSON.stringify(section)
    if (text !== this.applied) {
      await this.c.datapath.setFirewallSection(section)
      this.applied = text
      this.appliedMappings = mappings.length
      this.metrics.firewallUpdates.inc({ result: 'applied' })
    }
    // Retried each pass: the bridge may not exist yet on the first one.
    setRouteLocalnet(BRIDGE_NAME, mappings.length > 0)
    for (const veth of hairpinVeths(endpoints, mappings)) setHairpin(veth)
  }

  /** Converges now (the timer and store changes do this on their own). */
  reconcile(): Promise<void> {
    return this.serial(() => this.apply())
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
    const plan = planPublish(asked, [...others, ...own, ...(await hostSockets())], this.range)
    if ('exhausted' in plan) throw exhaustedError(plan.exhausted, this.range)
    if ('conflict' in plan) {
      const { port, held } = plan.conflict
      this.metrics.conflicts.inc()
      if (held.holder.kind === 'process')
        held.holder.description = await describeSocketHolder(port.hostPort, port.protocol)
      throw conflictError(port, held)
    }
    this.pending.set(key, {
      value: { ...value, published: [...kept, ...plan.ok] },
      index: this.c.store.modifyIndex(key),
      since: Date.now(),
    })
    try {
      await this.apply()
    } catch (err) {
      this.pending.delete(key)
      // the datapath kept the previous rules (its batch is atomic); bring our view back in step
      await this.apply().catch(() => undefined)
      throw err
    }
    return plan.ok
  }

  /**
   * CNI ADD, before the endpoint record is written: checks the record's
   * published ports, picks hostPort 0, and puts their rules in place.
   * Returns the ports as the record should store them.
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
    try {
      await this.c.store.put(key, value as unknown as JsonValue, { cas: index })
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
      } catch (err) {
        this.pending.delete(entry.key)
        await this.apply().catch(() => undefined)
        throw err
      }
      await this.apply()
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
      await this.apply()
      return gone
    })
  }

  // ---- listing ----

  /** Every published port in the cluster as this host's store sees it. */
  rows(): PortRow[] {
    const addresses = new Map(
      this.c.store
        .list(LEASE_PREFIX)
        .map((r) => [r.owner, (r.value as Partial<LeaseValue> | null)?.publicIp] as const),
    )
    return portRows(
      this.endpoints(ENDPOINT_PREFIX),
      this.c.peerId,
      (owner) => addresses.get(owner) ?? undefined,
    )
  }
}
