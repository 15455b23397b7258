import { EventEmitter } from 'node:events'
import type { Counters } from '../lib/counters.js'
import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Startable } from '../lib/startable.js'
import type { LeaseValue } from '../store/records.js'
import { type JsonValue, LEASE_PREFIX, type Store } from '../store/types.js'
import { type Cidr, containsAddress, formatCidr, formatIPv4, overlaps, parseIPv4, sameCidr } from './cidr.js'
import {
  NETWORK_CONFIG_KEY,
  type NetworkConfig,
  type NetworkConfigInput,
  networkRanges,
  overlayMtu,
  parseNetworkConfig,
  sameNetworkConfig,
} from './config.js'
import {
  chooseSubnet,
  claimable,
  gatewayOf,
  type LeaseView,
  leaseKey,
  parseLeaseValue,
  validLeases,
} from './leases.js'
import { readSubnetEnv, writeSubnetEnv } from './subnet-env.js'
import { detectUnderlay, type Underlay } from './underlay.js'

// The lease manager: claims this host's subnet, keeps it renewed, notices
// when it loses it, and tells the rest of the agent. All decisions come from
// the pure functions in leases.ts over the store's contents; this file only
// sequences them in time (claim, settle, renew) and performs the effects.

/** The lease this host holds, in the form its consumers need. */
export interface CurrentLease {
  /** CIDR, e.g. 10.244.3.0/24 */
  subnet: string
  cidr: Cidr
  /** bridge address (the subnet's first address) */
  gateway: string
  network: NetworkConfig
  /** overlay MTU on this host */
  mtu: number
  publicIp: string
  underlayInterface: string
  claimedAt: number
  backend: LeaseValue['backend']
}

export type LeaseState = 'joining' | 'waiting-config' | 'settling' | 'acquired' | 'no-subnet' | 'error'

export interface LeaseStatus {
  state: LeaseState
  /** why the host has no lease (no-subnet, error, waiting-config) */
  reason?: string
  subnet?: string
  since: string
}

export interface LeaseEvents {
  /** this host now holds a subnet (first time, or again after `lost`) */
  acquired: [lease: CurrentLease]
  /** same subnet, other attributes (network config, MTU, backend data) */
  changed: [change: { previous: CurrentLease; current: CurrentLease }]
  /** the subnet is no longer this host's; a re-claim follows */
  lost: [loss: { previous: CurrentLease; reason: string }]
}

/** What the datapath, CNI and DNS see of the lease manager (`components.lease`). */
export interface LeaseComponent {
  current(): CurrentLease | undefined
  status(): LeaseStatus
  /** the cluster network config in force (last valid one read from the store) */
  network(): NetworkConfig | undefined
  /** every lease in the store, judged (valid ones hold their subnets) */
  view(): LeaseView | undefined
  /** backend data published in the lease (e.g. the VTEP MAC once the VXLAN device exists) */
  setBackendData(data: { vtepMac?: string }): Promise<void>
  on<K extends keyof LeaseEvents>(event: K, fn: (...args: LeaseEvents[K]) => void): unknown
  off<K extends keyof LeaseEvents>(event: K, fn: (...args: LeaseEvents[K]) => void): unknown
}

export interface LeaseManagerComponents {
  store: Store
  config: { name: string; runDir: string; underlayAddress?: string; underlayInterface?: string }
  logger: Logger
  counters: Counters
  shutdown: AbortSignal
}

export interface LeaseManagerInit {
  /** lease lifetime; renewed every third of it */
  ttlMs: number
  /** how long a claim waits for gossip/sync to surface a competing claim before it counts */
  settleMs: number
  /** network config written to the store when the cluster has none after settleMs; false: wait for `plexctl network init` */
  seed: NetworkConfigInput | false
  /** retry interval while no subnet is free or the underlay is unknown (default: settleMs, at most 10 s) */
  retryMs?: number
  /**
   * True once this host has heard from a cluster peer (or needs none). Until
   * then, or joinTimeoutMs, it neither seeds a config nor claims: a settle
   * period only surfaces competing claims if the hosts can already talk.
   */
  joined?: () => boolean
  /** default 20 s */
  joinTimeoutMs?: number
  /** tests pin the underlay and the subnet choice */
  underlay?: () => Promise<Underlay>
  random?: () => number
}

interface Claim {
  subnet: Cidr
  value: LeaseValue
  /** when the record was last written (local clock) */
  lastPut: number
  /** defined while settling */
  settleUntil?: number
}

export class LeaseManager extends EventEmitter<LeaseEvents> implements Startable, LeaseComponent {
  private readonly log: Logger
  private cfg?: NetworkConfig
  private underlay?: Underlay
  private claim?: Claim
  private lease?: CurrentLease
  private lastView?: LeaseView
  private backendData: { vtepMac?: string } = {}
  private st: LeaseStatus = {
    state: 'waiting-config',
    reason: 'no network config in the store yet',
    since: new Date().toISOString(),
  }
  private reported = new Set<string>()
  private badConfigSeen?: string
  private startedAt = 0
  private seeded = false
  private joinedAt?: number
  private dirty = false
  private wakeUp?: () => void
  private unwatch: (() => void)[] = []
  private loop?: Promise<void>
  private readonly stopping = new AbortController()

  constructor(
    private readonly c: LeaseManagerComponents,
    private readonly init: LeaseManagerInit,
  ) {
    super()
    this.log = c.logger.child({ component: 'ipam' })
    if (init.seed !== false) parseNetworkConfig(init.seed) // refuse a bad seed at start-up, not minutes later
  }

  current(): CurrentLease | undefined {
    return this.lease
  }

  status(): LeaseStatus {
    return this.st
  }

  network(): NetworkConfig | undefined {
    return this.cfg
  }

  view(): LeaseView | undefined {
    return this.lastView
  }

  async start(): Promise<void> {
    this.startedAt = Date.now()
    const wake = () => this.wake()
    this.unwatch = [this.c.store.watch(LEASE_PREFIX, wake), this.c.store.watch(NETWORK_CONFIG_KEY, wake)]
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    for (const u of this.unwatch) u()
    this.wake()
    await this.loop
    // The lease record stays: a restart within the TTL keeps the subnet.
  }

  async setBackendData(data: { vtepMac?: string }): Promise<void> {
    this.backendData = { ...data }
    this.wake()
  }

  private wake(): void {
    this.dirty = true
    this.wakeUp?.()
  }

  /** ms since this host joined the cluster (see LeaseManagerInit.joined), or -1 while it is still joining. */
  private joinedFor(now: number): number {
    if (this.joinedAt === undefined) {
      const timedOut = now >= this.startedAt + (this.init.joinTimeoutMs ?? 20_000)
      if (!this.init.joined || this.init.joined()) this.joinedAt = now
      else if (timedOut) {
        this.joinedAt = now
        this.log.warn(
          'no cluster peer answered: going ahead alone (claims are still checked when peers appear)',
        )
      } else return -1
    }
    return now - this.joinedAt
  }

  private get retryMs(): number {
    return this.init.retryMs ?? Math.min(this.init.settleMs, 10_000)
  }

  private async run(): Promise<void> {
    const signals = [this.stopping.signal, this.c.shutdown]
    while (!signals.some((s) => s.aborted)) {
      this.dirty = false
      let delay: number
      try {
        delay = await this.step(Date.now())
      } catch (err) {
        this.c.counters.inc('ipam.errors')
        this.log.error({ err }, `lease step failed: ${errorMessage(err)}`)
        this.setStatus('error', errorMessage(err))
        delay = this.retryMs
      }
      if (this.dirty) continue
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          for (const s of signals) s.removeEventListener('abort', done)
          this.wakeUp = undefined
          resolve()
        }
        const timer = setTimeout(done, Math.max(0, delay))
        for (const s of signals) s.addEventListener('abort', done, { once: true })
        this.wakeUp = done
      })
    }
  }

  /** One pass of the state machine; returns how long to sleep unless something changes first. */
  private async step(now: number): Promise<number> {
    if (this.joinedFor(now) < 0) {
      this.setStatus('joining', 'waiting to hear from a cluster peer before claiming a subnet')
      return 250
    }
    const cfg = await this.readConfig(now)
    if (!cfg) return this.retryMs
    if (!this.underlay) this.underlay = await (this.init.underlay ?? (() => detectUnderlay(this.want())))()
    const pub = parseIPv4(this.underlay.address) as number
    if (containsAddress(networkRanges(cfg).network, pub)) {
      this.setStatus(
        'error',
        `underlay address ${this.underlay.address} is inside the cluster network ${cfg.Network}; other hosts would refuse the lease`,
      )
      return this.retryMs
    }
    const view = validLeases(this.c.store.list(LEASE_PREFIX), cfg, now)
    this.lastView = view
    this.reportInvalid(view)

    if (this.claim) {
      const lostWhy = this.claimLost(view, cfg, now)
      if (lostWhy) await this.drop(lostWhy)
    }
    if (this.claim) return this.keep(cfg, now)
    return this.newClaim(cfg, view)
  }

  private want(): { address?: string; ifname?: string } {
    return { address: this.c.config.underlayAddress, ifname: this.c.config.underlayInterface }
  }

  /** The valid network config in the store, seeding it when the cluster has none. A bad stored config keeps the last good one. */
  private async readConfig(now: number): Promise<NetworkConfig | undefined> {
    const rec = this.c.store.get(NETWORK_CONFIG_KEY)
    if (!rec) {
      if (this.init.seed !== false && !this.seeded && this.joinedFor(now) >= this.init.settleMs) {
        // Waiting one settle period after joining lets sync bring an existing cluster's config before we write ours.
        this.seeded = true
        const seed = parseNetworkConfig(this.init.seed)
        try {
          await this.c.store.put(NETWORK_CONFIG_KEY, seed as unknown as JsonValue, { cas: 0 })
          this.log.info({ network: seed }, "no cluster network config yet: seeded it from this host's config")
          return this.adopt(seed)
        } catch (err) {
          this.log.info({ err }, 'network config appeared while seeding it')
        }
      }
      if (!this.cfg)
        this.setStatus(
          'waiting-config',
          this.init.seed === false
            ? 'no network config in the store: run `plexctl network init`'
            : 'no network config in the store yet',
        )
      return this.cfg
    }
    try {
      const cfg = parseNetworkConfig(rec.value)
      this.badConfigSeen = undefined
      return this.adopt(cfg)
    } catch (err) {
      const why = `${NETWORK_CONFIG_KEY} written by ${rec.owner} is invalid, keeping the last valid one: ${errorMessage(err)}`
      if (this.badConfigSeen !== why) {
        this.badConfigSeen = why
        this.c.counters.inc('ipam.invalid_network_config')
        this.log.warn(why)
      }
      if (!this.cfg) this.setStatus('waiting-config', why)
      return this.cfg
    }
  }

  private adopt(cfg: NetworkConfig): NetworkConfig {
    if (!this.cfg || !sameNetworkConfig(this.cfg, cfg)) {
      if (this.cfg) this.log.info({ network: cfg }, 'cluster network config changed')
      this.cfg = cfg
    }
    return cfg
  }

  /** Why the claim no longer holds, or undefined while it does. */
  private claimLost(view: LeaseView, cfg: NetworkConfig, now: number): string | undefined {
    const claim = this.claim as Claim
    if (now >= claim.lastPut + this.init.ttlMs)
      return 'the lease expired before it was renewed (was the agent paused?)'
    if (!claimable(networkRanges(cfg), claim.subnet))
      return `subnet ${claim.value.subnet} is not in the network config any more`
    const self = this.c.store.self
    const own = view.valid.find((l) => l.peerId === self)
    if (own && sameCidr(own.subnet, claim.subnet) && own.value.claimedAt === claim.value.claimedAt)
      return undefined
    const bad = view.invalid.find((i) => i.owner === self)
    return bad ? bad.reason : 'the lease record is gone from the store'
  }

  private async drop(reason: string): Promise<void> {
    const claim = this.claim as Claim
    this.claim = undefined
    this.c.counters.inc('ipam.lease_lost')
    const previous = this.lease
    this.lease = undefined
    if (previous) {
      this.log.warn({ subnet: previous.subnet }, `lost lease ${previous.subnet}: ${reason}; claiming another`)
      this.emitSafe('lost', { previous, reason })
    } else
      this.log.info(
        { subnet: claim.value.subnet },
        `claim for ${claim.value.subnet} lost while settling: ${reason}`,
      )
  }

  /** Settling or holding: finish settling, follow config/backend changes, renew on time. */
  private async keep(cfg: NetworkConfig, now: number): Promise<number> {
    const claim = this.claim as Claim
    const backend = this.backendFor(cfg)
    if (JSON.stringify(backend) !== JSON.stringify(claim.value.backend)) {
      await this.publish({ ...claim.value, backend }, now) // same claimedAt: a change, not a new claim
    }
    if (claim.settleUntil !== undefined) {
      if (now < claim.settleUntil) return claim.settleUntil - now
      claim.settleUntil = undefined
    }
    const next = this.describe(cfg)
    const previous = this.lease
    if (!previous || JSON.stringify(previous) !== JSON.stringify(next)) {
      await writeSubnetEnv(this.c.config.runDir, {
        network: cfg.Network,
        subnet: next.cidr,
        mtu: next.mtu,
        ipMasq: cfg.IPMasq,
      })
      // current() changes in the same tick as the event, so no consumer sees one without the other
      this.lease = next
      this.setStatus('acquired', undefined, next.subnet)
      if (previous) this.emitSafe('changed', { previous, current: next })
      else {
        this.c.counters.inc('ipam.lease_acquired')
        this.log.info({ subnet: next.subnet, claimedAt: next.claimedAt }, `acquired lease ${next.subnet}`)
        this.emitSafe('acquired', next)
      }
    } else this.setStatus('acquired', undefined, next.subnet) // e.g. after an error in an earlier step
    const renewAt = claim.lastPut + this.init.ttlMs / 3
    if (now >= renewAt) {
      try {
        await this.publish(claim.value, now)
        this.c.counters.inc('ipam.lease_renewals')
      } catch (err) {
        this.c.counters.inc('ipam.lease_renew_failures')
        this.log.warn({ err }, `renewing lease ${claim.value.subnet} failed: ${errorMessage(err)}`)
        return Math.min(1000, this.retryMs)
      }
      return this.init.ttlMs / 3
    }
    return renewAt - now
  }

  private describe(cfg: NetworkConfig): CurrentLease {
    const claim = this.claim as Claim
    const u = this.underlay as Underlay
    return {
      subnet: claim.value.subnet,
      cidr: claim.subnet,
      gateway: formatIPv4(gatewayOf(claim.subnet)),
      network: cfg,
      mtu: overlayMtu(cfg, u.mtu),
      publicIp: u.address,
      underlayInterface: u.ifname,
      claimedAt: claim.value.claimedAt,
      backend: claim.value.backend,
    }
  }

  private backendFor(cfg: NetworkConfig): LeaseValue['backend'] {
    if (cfg.Backend.Type !== 'vxlan') return { type: cfg.Backend.Type }
    return {
      type: 'vxlan',
      vni: cfg.Backend.VNI,
      ...(this.backendData.vtepMac ? { vtepMac: this.backendData.vtepMac } : {}),
    }
  }

  private async publish(value: LeaseValue, now: number): Promise<void> {
    await this.c.store.put(leaseKey(this.c.store.self), value as unknown as JsonValue, {
      ttlMs: this.init.ttlMs,
    })
    const claim = this.claim as Claim
    claim.value = value
    claim.lastPut = now
  }

  /** Claim order: our own live lease, then the subnet in the last subnet.env, then a free one. */
  private async newClaim(cfg: NetworkConfig, view: LeaseView): Promise<number> {
    const self = this.c.store.self
    const ranges = networkRanges(cfg)
    const others = view.valid.filter((l) => l.peerId !== self)
    const free = (s: Cidr) => claimable(ranges, s) && !others.some((l) => overlaps(l.subnet, s))

    let subnet: Cidr | undefined
    let claimedAt: number | undefined
    let source = ''
    const ownRec = this.c.store.get(leaseKey(self))
    const own = ownRec ? parseLeaseValue(ownRec.value) : undefined
    if (own && 'lease' in own && free(own.subnet)) {
      // Still live: this is the same claim continuing (after a restart), so it keeps its age.
      subnet = own.subnet
      claimedAt = own.lease.claimedAt
      source = 'own lease'
    } else {
      const last = await readSubnetEnv(this.c.config.runDir)
      if (last && free(last)) {
        subnet = last
        source = 'last subnet.env'
      } else {
        const pick = chooseSubnet(cfg, others, this.init.random)
        if ('reason' in pick) return this.noSubnet(pick.reason, !!ownRec)
        subnet = pick.subnet
        source = 'free subnet'
      }
    }
    const value: LeaseValue = {
      subnet: formatCidr(subnet),
      publicIp: (this.underlay as Underlay).address,
      hostname: this.c.config.name,
      backend: this.backendFor(cfg),
      // a new claim is dated when it is made, not when this step began
      claimedAt: claimedAt ?? Date.now(),
    }
    const at = Date.now()
    this.claim = { subnet, value, lastPut: at, settleUntil: at + this.init.settleMs }
    try {
      await this.publish(value, at)
    } catch (err) {
      this.claim = undefined
      throw err
    }
    this.setStatus(
      'settling',
      `claimed ${value.subnet} (${source}); waiting ${this.init.settleMs} ms for competing claims`,
      value.subnet,
    )
    this.log.info(
      { subnet: value.subnet, source, claimedAt: value.claimedAt },
      `claiming ${value.subnet} (${source})`,
    )
    return this.init.settleMs
  }

  private async noSubnet(reason: string, haveRecord: boolean): Promise<number> {
    // A losing claim of ours would show up as a conflict everywhere: withdraw it.
    if (haveRecord) await this.c.store.delete(leaseKey(this.c.store.self))
    if (this.st.state !== 'no-subnet' || this.st.reason !== reason)
      this.log.warn(`${reason}; retrying every ${this.retryMs} ms`)
    this.c.counters.inc('ipam.no_free_subnet')
    this.setStatus('no-subnet', reason)
    return this.retryMs
  }

  private reportInvalid(view: LeaseView): void {
    const now = new Set(view.invalid.map((i) => `${i.key} ${i.kind} ${i.subnet ?? ''} ${i.heldBy ?? ''}`))
    for (const i of view.invalid) {
      const id = `${i.key} ${i.kind} ${i.subnet ?? ''} ${i.heldBy ?? ''}`
      if (this.reported.has(id)) continue
      this.c.counters.inc(`ipam.invalid_leases.${i.kind}`)
      this.log.warn({ key: i.key, owner: i.owner, kind: i.kind }, `ignoring lease ${i.key}: ${i.reason}`)
    }
    this.reported = now
  }

  private setStatus(state: LeaseState, reason?: string, subnet?: string): void {
    if (this.st.state === state && this.st.reason === reason && this.st.subnet === subnet) return
    this.st = {
      state,
      since: new Date().toISOString(),
      ...(reason ? { reason } : {}),
      ...(subnet ? { subnet } : {}),
    }
  }

  /** A throwing or rejecting listener must not break the lease loop. */
  private emitSafe<K extends keyof LeaseEvents>(event: K, ...args: LeaseEvents[K]): void {
    for (const fn of this.listeners(event) as ((...a: LeaseEvents[K]) => unknown)[]) {
      try {
        const r = fn(...args)
        if (r instanceof Promise) r.catch((err) => this.log.error({ err, event }, 'lease listener failed'))
      } catch (err) {
        this.log.error({ err, event }, 'lease listener failed')
      }
    }
  }
}
