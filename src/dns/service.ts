import { createSocket } from 'node:dgram'
import { isIP } from 'node:net'
import dnsPacket from 'dns-packet'
import { CLUSTER_NETWORK_NAME } from '../ipam/bridge.js'
import { leaseGateway } from '../ipam/leases.js'
import { netLeaseKeys } from '../ipam/macvlan.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import { type Explanation, explainSubject } from '../lib/explain.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { runSliced, runSteps } from '../lib/steps.js'
import { buildCatalog, CATALOG_PREFIXES, catalogInput } from '../services/catalog.js'
import { endpointCodec, networkCodec } from '../store/codecs.js'
import type { BridgeNetworkValue } from '../store/records.js'
import { ENDPOINT_PREFIX, NET_LEASE_PREFIX, NETWORKS_PREFIX, type ReadableStore } from '../store/types.js'
import { CacheStage } from './cache/cache.js'
import { buildChain, type Next, type Stage } from './chain.js'
import type { DnsConfig } from './config.js'
import { ForwardStage, type Upstream } from './forward/forward.js'
import { parseUpstream, readResolvConf } from './forward/resolvconf.js'
import { tcpExchange } from './forward/tcp.js'
import { DnsMetrics } from './metrics.js'
import { type Askers, askerScopes, networkView, type Scope } from './scope.js'
import { type ChainFor, DnsListener, emptyStats, type ServerStats } from './server.js'
import { ZoneStage } from './zone/handler.js'
import { LiveZone } from './zone/live.js'
import { zoneOrigins } from './zone/origins.js'

export const ZONE_ORIGIN = 'plexus.internal'
/** what containers get in resolv.conf through the CNI result */
export const SEARCH_DOMAINS = [`svc.${ZONE_ORIGIN}`, ZONE_ORIGIN]
/** coalesces bursts of store changes; well under the 1 s the zone may lag the store */
const REBUILD_DELAY_MS = 20
const MAX_REBUILD_DELAY_MS = 800
/**
 * A zone update runs in slices of at most this long (then queries get a turn): at 50,000 records
 * the first build takes seconds, and one change to a big service tens of milliseconds (bench/zone)
 */
const REBUILD_SLICE_MS = 5
/** how often a listener that could not bind (gateway address not yet on the bridge) is retried */
const BIND_RETRY_MS = 1000

/** a stage left out of an internal network's chain: the query goes on to the end (REFUSED) */
const passOn = (name: string): Stage => ({ name, handle: (q, next) => next(q) })

export interface DnsComponents {
  config: { dns: DnsConfig }
  logger: Logger
  metrics: Metrics
  store: ReadableStore
  peerId: string
}

export interface DnsStatus {
  listening: { address: string; port: number }[]
  pending: string[]
  upstreams: Upstream[]
  zone: { names: number; bytes: number; serial: number; builtAt: string; buildMs: number }
  stats: ServerStats & { cacheHits: number; cacheMisses: number; forwardFailures: number; overloaded: number }
}

export interface DecodedAnswer {
  server: string
  rcode: string
  flags: string[]
  rttMs: number
  answers: dnsPacket.Answer[]
  authorities: dnsPacket.Answer[]
  additionals: dnsPacket.Answer[]
}

/**
 * The agent's DNS server: a zone per network over the store, forwarding,
 * listeners on the gateways and host addresses; each query is answered from
 * the zones of its asker's networks (scope.ts).
 */
export class DnsService implements Startable {
  private readonly cache: CacheStage
  private readonly forward: ForwardStage
  /** network name (the cluster network's: CLUSTER_NETWORK_NAME) → its zone */
  private readonly zones = new Map<string, LiveZone>()
  private askers: Askers
  /** the local endpoints or the networks changed: the next update reads the askers again */
  private askersDirty = false
  /** Scope.key → its chain, made on first use (cleared with the askers and zones it was made from) */
  private readonly chains = new Map<string, Next>()
  private readonly chainFor: ChainFor = {
    v4: (address) => this.chainOf(this.askers.ofV4(address)),
    text: (address) => this.chainOf(this.askers.of(address)),
  }
  private readonly listeners = new Map<string, DnsListener>()
  private readonly failedBinds = new Set<string>()
  private readonly stats = emptyStats()
  private readonly metrics: DnsMetrics
  private readonly unwatch: (() => void)[] = []
  private readonly upstreams: Upstream[]
  private rebuildTimer?: NodeJS.Timeout
  private expiryTimer?: NodeJS.Timeout
  private bindTimer?: NodeJS.Timeout
  private reconciling: Promise<unknown> = Promise.resolve()
  /** a sliced update is running; changes meanwhile wait for the next (the live zone holds them) */
  private building = false
  private lastBuildMs = 0
  /** when the last update ended (performance.now()) */
  private lastEnd = 0
  private builtAt = new Date(0)
  private stopped = false

  constructor(private readonly c: DnsComponents) {
    const cfg = c.config.dns
    this.upstreams = cfg.upstreams.length
      ? cfg.upstreams.map((u) => {
          const p = parseUpstream(u)
          if (!p)
            throw new PlexusError(
              'PLX_DNS_BAD_UPSTREAM',
              `dns.upstreams: "${u}" is not an address or address:port`,
            )
          return p
        })
      : readResolvConf(cfg.resolvConf, cfg.listen)
    for (const a of cfg.listen)
      if (!isIP(a)) throw new PlexusError('PLX_DNS_BAD_LISTEN', `dns.listen: "${a}" is not an IP address`)
    this.metrics = new DnsMetrics(c.metrics, () => this.status().stats)
    this.askers = this.readAskers()
    // the first build runs at once: nothing is served before it, and an empty zone would answer NXDOMAIN
    const started = performance.now()
    for (const live of this.zones.values()) runSteps(live.update())
    this.metrics.zoneUpdated('full', performance.now() - started)
    this.builtAt = new Date()
    this.cache = new CacheStage({ size: cfg.cacheSize, maxTtl: cfg.cacheMaxTtl })
    this.forward = new ForwardStage({
      upstreams: this.upstreams,
      timeoutMs: cfg.upstreamTimeoutMs,
      maxInFlight: cfg.maxInFlight,
      onAttempt: (u, result) => this.metrics.forwarded(u, result),
    })
  }

  /** the cluster network's zone (always there) */
  private get cluster(): LiveZone {
    return this.zones.get(CLUSTER_NETWORK_NAME)!
  }

  /**
   * Who asks from where, from this host's endpoint records and the bridge
   * networks; makes a zone for each network an asker may be on and drops the
   * zones of networks gone (a new zone is built by the next update).
   */
  private readAskers(): Askers {
    const { store, peerId } = this.c
    const endpoints = store
      .list(`${ENDPOINT_PREFIX}${peerId}/`)
      .flatMap((r) => endpointCodec.valueOf(r) ?? [])
    const networks = store
      .list(NETWORKS_PREFIX)
      .flatMap((r) => networkCodec.valueOf(r) ?? [])
      .filter((n): n is BridgeNetworkValue => n.driver === 'bridge')
    const askers = askerScopes({ endpoints, networks })
    for (const name of askers.networks)
      if (!this.zones.has(name))
        this.zones.set(name, new LiveZone(networkView(store, name), () => this.apex()))
    for (const name of this.zones.keys()) if (!askers.networks.includes(name)) this.zones.delete(name)
    this.chains.clear()
    return askers
  }

  private apex() {
    return {
      origin: ZONE_ORIGIN,
      ttl: this.c.config.dns.ttl,
      nsAddresses: this.desiredAddresses(),
      agentAddress: this.gateway(),
    }
  }

  /** the chain of an asker's scope: its networks' zones, then forwarding unless they are all internal */
  private chainOf(scope: Scope): Next {
    let chain = this.chains.get(scope.key)
    if (chain) return chain
    // readAskers made a zone for every network a scope names
    const [first, ...rest] = scope.networks.map((n) => this.zones.get(n)!.table)
    chain = buildChain({
      zone: new ZoneStage(first!, ...rest),
      cache: scope.forward ? this.cache : passOn('cache'),
      forward: scope.forward ? this.forward : passOn('forward'),
    })
    this.chains.set(scope.key, chain)
    return chain
  }

  async start(): Promise<void> {
    const { store, peerId } = this.c
    const local = `${ENDPOINT_PREFIX}${peerId}/`
    for (const p of CATALOG_PREFIXES)
      this.unwatch.push(
        store.watch(p, (ev) => {
          for (const live of this.zones.values()) live.changed(ev.key)
          if (ev.key.startsWith(local)) this.askersDirty = true
          this.scheduleRebuild()
        }),
      )
    this.unwatch.push(
      store.watch(NETWORKS_PREFIX, () => {
        this.askersDirty = true
        this.scheduleRebuild()
      }),
    )
    // this host's gateways: of the cluster network, and of each bridge network it holds a subnet of
    for (const p of [`leases/${peerId}`, `${NET_LEASE_PREFIX}${peerId}/`])
      this.unwatch.push(
        store.watch(p, () => {
          void this.reconcileListeners()
          // the NS glue and agent.<zone> name the gateway addresses
          for (const live of this.zones.values()) live.changedApex()
          this.scheduleRebuild()
        }),
      )
    await this.rebuild()
    await this.reconcileListeners()
    this.c.logger.info(
      { listening: [...this.listeners.keys()], pending: [...this.failedBinds], upstreams: this.upstreams },
      'dns started',
    )
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const u of this.unwatch) u()
    clearTimeout(this.rebuildTimer)
    clearTimeout(this.expiryTimer)
    clearTimeout(this.bindTimer)
    await Promise.all([...this.listeners.values()].map((l) => l.close()))
    this.listeners.clear()
    this.forward.close()
  }

  /** the addresses the server should listen on now: the configured ones, this host's gateway of each network */
  desiredAddresses(): string[] {
    const cfg = this.c.config.dns
    const out = [...cfg.listen]
    if (!cfg.listenGateway) return out
    const { store, peerId } = this.c
    // the networks with a zone (an asker's, readAskers), the zones' constructors ask too
    const bridges = [...this.zones.keys()].filter((n) => n !== CLUSTER_NETWORK_NAME)
    for (const gw of [this.gateway(), ...bridges.map((n) => leaseGateway(store, peerId, netLeaseKeys(n)))])
      if (gw && !out.includes(gw)) out.push(gw)
    return out
  }

  private gateway(): string | undefined {
    return leaseGateway(this.c.store, this.c.peerId)
  }

  /**
   * Whether the server listens on address, binding it now if it should and
   * could not before (CNI ADD asks, so the first container's first query on
   * a fresh host is answered instead of waiting for the next retry).
   */
  async listeningOn(address: string): Promise<boolean> {
    this.refreshAskers() // a network created a moment ago has its zone and gateway from now on
    if (!this.listeners.has(address)) await this.reconcileListeners()
    return this.listeners.has(address)
  }

  /** one pass at a time: two overlapping passes would bind one address twice */
  private reconcileListeners(): Promise<void> {
    const pass = this.reconciling.then(() => this.reconcileOnce())
    this.reconciling = pass.catch(() => undefined)
    return pass
  }

  private async reconcileOnce(): Promise<void> {
    if (this.stopped) return
    const want = new Set(this.desiredAddresses())
    for (const [addr, l] of this.listeners) {
      if (!want.has(addr)) {
        this.listeners.delete(addr)
        await l.close()
      }
    }
    this.failedBinds.clear()
    const cfg = this.c.config.dns
    for (const addr of want) {
      if (this.listeners.has(addr)) continue
      const l = new DnsListener(
        addr,
        {
          port: cfg.port,
          maxTcpConnections: cfg.tcpMaxConnections,
          maxTcpPerClient: cfg.tcpMaxPerClient,
          tcpMessageMs: cfg.tcpMessageTimeoutMs,
        },
        this.chainFor,
        this.stats,
        this.metrics,
      )
      try {
        await l.listen()
        this.listeners.set(addr, l)
      } catch (err) {
        // the gateway address appears when the datapath configures the bridge: retry until then
        this.failedBinds.add(addr)
        this.c.logger.debug({ addr, err: errorMessage(err) }, 'dns listen failed, will retry')
      }
    }
    clearTimeout(this.bindTimer)
    if (this.failedBinds.size && !this.stopped) {
      this.bindTimer = setTimeout(() => void this.reconcileListeners(), BIND_RETRY_MS)
      this.bindTimer.unref()
    }
  }

  private scheduleRebuild(): void {
    if (this.rebuildTimer || this.stopped) return
    // an update takes the core from the answer path (in slices) while it runs: under constant churn keep it
    // to about a third of the time (an update of 100 ms waits until 200 ms have passed since the last one)
    const idle = performance.now() - this.lastEnd
    const delay = Math.max(REBUILD_DELAY_MS, Math.min(this.lastBuildMs * 2 - idle, MAX_REBUILD_DELAY_MS))
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined
      void this.rebuild()
    }, delay)
    this.rebuildTimer.unref()
  }

  /** reads the askers again if they changed; a network that got or lost its zone gets or loses its listener and is built */
  private refreshAskers(): void {
    if (!this.askersDirty) return
    this.askersDirty = false
    const before = [...this.zones.keys()].join()
    this.askers = this.readAskers()
    if ([...this.zones.keys()].join() === before) return
    this.scheduleRebuild() // a new zone is built by the next update
    void this.reconcileListeners()
  }

  /** one update at a time; changes during one are held by the live zones and get the next */
  private async rebuild(): Promise<void> {
    if (this.building || this.stopped) return
    this.building = true
    const started = performance.now()
    try {
      this.refreshAskers()
      for (const [network, live] of this.zones) {
        if (!live.dirty) continue
        const began = performance.now()
        const kind = live.fullPending ? 'full' : 'changes'
        try {
          await runSliced(live.update(), REBUILD_SLICE_MS)
          this.metrics.zoneUpdated(kind, performance.now() - began)
        } catch (err) {
          this.c.logger.error(
            { err, network },
            'dns zone update failed; serving the previous zone, reading the store again',
          )
          live.resync()
        }
      }
      this.builtAt = new Date()
    } finally {
      this.building = false
      this.lastEnd = performance.now()
      this.lastBuildMs = this.lastEnd - started
    }
    this.scheduleExpiry()
    if (this.askersDirty || [...this.zones.values()].some((z) => z.dirty)) this.scheduleRebuild()
  }

  /** a TTL record lapses without a store event (the store expires lazily): the zone drops it on time */
  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer)
    let at: number | undefined
    for (const live of this.zones.values()) {
      const next = live.nextExpiry()
      if (next !== undefined && (at === undefined || next < at)) at = next
    }
    if (at === undefined || this.stopped) return
    this.expiryTimer = setTimeout(
      () => {
        for (const live of this.zones.values()) live.expire(Date.now())
        this.scheduleRebuild()
      },
      Math.max(at - Date.now() + 1, 0),
    )
    this.expiryTimer.unref()
  }

  /**
   * Which store records produced the zone entries `subject` names (a name, an
   * address). From the store as it is now: the zone served lags it by at most
   * one rebuild (under a second).
   */
  explain(subject: string): Explanation[] {
    const origins = zoneOrigins(buildCatalog(catalogInput(this.c.store)), ZONE_ORIGIN)
    return explainSubject(origins, subject, (key) => this.c.store.modifyIndex(key))
  }

  status(): DnsStatus {
    const live = [...this.listeners.values()].map((l) => l.udpCounts())
    return {
      listening: [...this.listeners.values()].map((l) => ({ address: l.address, port: l.port })),
      pending: [...this.failedBinds],
      upstreams: this.upstreams,
      zone: {
        // over every network's zone
        names: [...this.zones.values()].reduce((sum, z) => sum + z.table.size.names, 0),
        bytes: [...this.zones.values()].reduce((sum, z) => sum + z.table.size.bytes, 0),
        serial: this.cluster.serial,
        builtAt: this.builtAt.toISOString(),
        buildMs: Math.round(this.lastBuildMs * 10) / 10,
      },
      stats: {
        ...this.stats,
        // the live sockets' own counters (closed ones were folded into this.stats)
        errors: live.reduce((sum, c) => sum + c.errors, this.stats.errors),
        udpDropped: live.reduce((sum, c) => sum + c.dropped, this.stats.udpDropped),
        cacheHits: this.cache.hits,
        cacheMisses: this.cache.misses,
        forwardFailures: this.forward.failures,
        overloaded: this.forward.overloaded,
      },
    }
  }

  /** Asks this host's own server (first listener, over UDP) and decodes the answer: `plexctl dns query`. */
  async query(name: string, type: string, timeoutMs = 3000): Promise<DecodedAnswer> {
    const l = [...this.listeners.values()][0]
    if (!l)
      throw new PlexusError('PLX_DNS_NOT_LISTENING', 'the DNS server is not listening on any address yet', {
        status: 503,
      })
    return queryServer(l.address, l.port, name, type, timeoutMs)
  }
}

/**
 * One query with dns-packet, decoded: used by the API route and by tests. Over
 * UDP with EDNS (1,232 bytes), and again over TCP when the answer was truncated,
 * as dig does: a service of 30 members does not fit in 1,232 bytes (bench/converge's
 * size run read the truncated, empty answer as "not there yet").
 */
export async function queryServer(
  address: string,
  port: number,
  name: string,
  type: string,
  timeoutMs: number,
): Promise<DecodedAnswer> {
  const packet = dnsPacket.encode({
    type: 'query',
    id: (Math.random() * 0x10000) | 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer],
  })
  const started = process.hrtime.bigint()
  let msg = await udpExchange(address, port, packet, timeoutMs)
  if (msg.length > 3 && msg[2]! & 0x02) {
    const left = Math.max(1, timeoutMs - Number(process.hrtime.bigint() - started) / 1e6)
    const overTcp = await tcpExchange(address, port, packet, left)
    if (!overTcp) throw timeout(address, port, timeoutMs)
    msg = overTcp
  }
  try {
    const d = dnsPacket.decode(msg)
    return {
      server: `${address}:${port}`,
      rcode: (d as { rcode?: string }).rcode ?? 'NOERROR',
      flags: flagNames(d.flags ?? 0),
      rttMs: Number(process.hrtime.bigint() - started) / 1e6,
      answers: d.answers ?? [],
      authorities: d.authorities ?? [],
      additionals: (d.additionals ?? []).filter((a) => a.type !== 'OPT'),
    }
  } catch (err) {
    throw new PlexusError('PLX_DNS_BAD_ANSWER', `undecodable answer: ${errorMessage(err)}`, { status: 502 })
  }
}

const timeout = (address: string, port: number, ms: number) =>
  new PlexusError('PLX_DNS_TIMEOUT', `no answer from ${address}:${port} within ${ms} ms`, { status: 504 })

function udpExchange(address: string, port: number, packet: Buffer, timeoutMs: number): Promise<Buffer> {
  const sock = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4')
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close()
      reject(timeout(address, port, timeoutMs))
    }, timeoutMs)
    sock.on('message', (msg) => {
      clearTimeout(timer)
      sock.close()
      resolve(msg)
    })
    sock.on('error', (err) => {
      clearTimeout(timer)
      sock.close()
      reject(err)
    })
    sock.send(packet, port, address)
  })
}

function flagNames(f: number): string[] {
  const names: [number, string][] = [
    [1 << 15, 'qr'],
    [1 << 10, 'aa'],
    [1 << 9, 'tc'],
    [1 << 8, 'rd'],
    [1 << 7, 'ra'],
  ]
  return names.filter(([bit]) => f & bit).map(([, n]) => n)
}
