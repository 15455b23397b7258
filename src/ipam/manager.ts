import { EventEmitter } from 'node:events'
import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import type { LeaseValue } from '../store/records.js'
import { type JsonValue, NODE_PREFIX, type Store } from '../store/types.js'
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
  CLUSTER_LEASES,
  chooseSubnet,
  claimable,
  gatewayOf,
  type LeaseKeys,
  type LeaseView,
  majorityHeardSince,
  validLeases,
} from './leases.js'
import { type IpamMetrics, ipamMetrics, leaseStateGauge } from './metrics.js'
import { readSubnetEnv, type SubnetEnv, writeSubnetEnv } from './subnet-env.js'
import { detectUnderlay, type Underlay } from './underlay.js'

// The lease manager: claims this host's subnet, keeps it renewed, notices
// when it loses it, and tells the rest of the agent. All decisions come from
// the pure functions in leases.ts over the store's contents; this file only
// sequences them in time (claim, settle, renew, fence, withdraw) and performs
// the effects. The safety argument is in README.md ("Why no address is used twice").

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

export type LeaseState =
  | 'joining'
  | 'waiting-config'
  | 'settling'
  | 'acquired'
  /** holding, but unconfirmed by a majority for half the lease: no new addresses */
  | 'fenced'
  /** no subnet, and no majority of the cluster in reach: claiming would not be safe */
  | 'isolated'
  | 'no-subnet'
  | 'error'

/** every lease state (a Record, so the compiler says when a new state is missing here): the metric's label values */
const LEASE_STATES: Record<LeaseState, null> = {
  joining: null,
  'waiting-config': null,
  settling: null,
  acquired: null,
  fenced: null,
  isolated: null,
  'no-subnet': null,
  error: null,
}

export interface LeaseStatus {
  state: LeaseState
  /** why the host has no lease (no-subnet, error, waiting-config), or is fenced/isolated */
  reason?: string
  subnet?: string
  since: string
  /** ISO time of the holder's newest renewal a majority had heard of */
  confirmedAt?: string
  /** ISO time from which CNI ADD is refused, and when the lease is withdrawn, unless a renewal is confirmed first */
  fenceAt?: string
  withdrawAt?: string
}

export interface LeaseEvents {
  /** this host now holds a subnet (first time, or again after `lost`) */
  acquired: [lease: CurrentLease]
  /** same subnet, other attributes (network config, MTU, backend data) */
  changed: [change: { previous: CurrentLease; current: CurrentLease }]
  /** the subnet is no longer this host's (lost a conflict, or withdrawn unconfirmed); a re-claim follows */
  lost: [loss: { previous: CurrentLease; reason: string }]
}

/** What the datapath, CNI and DNS see of the lease manager (`components.lease`). */
/** what the datapath's backend publishes in this host's lease (LeaseValue['backend'] without the type) */
export type BackendData = Pick<LeaseValue['backend'], 'vtepMac' | 'publicKey' | 'nextPublicKey' | 'endpoint'>

export interface LeaseComponent {
  current(): CurrentLease | undefined
  /** the subnet this host last gave up (lost or withdrawn) while it holds none: its bridge address must go */
  withdrawn(): Cidr | undefined
  status(): LeaseStatus
  /** the cluster network config in force (last valid one read from the store) */
  network(): NetworkConfig | undefined
  /** every lease in the store, judged (valid ones hold their subnets) */
  view(): LeaseView | undefined
  /** backend data published in the lease (e.g. the VTEP MAC once the VXLAN device exists) */
  setBackendData(data: BackendData): Promise<void>
  on<K extends keyof LeaseEvents>(event: K, fn: (...args: LeaseEvents[K]) => void): unknown
  off<K extends keyof LeaseEvents>(event: K, fn: (...args: LeaseEvents[K]) => void): unknown
}

export interface LeaseManagerComponents {
  store: Store
  config: { name: string; runDir: string; underlayAddress?: string; underlayInterface?: string }
  logger: Logger
  metrics: Metrics
  shutdown: AbortSignal
}

/**
 * What a lease manager leases: the cluster network's host subnets (the
 * default), or the blocks of a named network's range (networks.ts). One set
 * of rules and one safety argument (README.md) for both.
 */
export interface LeaseSpace {
  /** in logs and status: "the cluster network", "network lan" */
  label: string
  keys: LeaseKeys
  /** the record the subnets are cut from, watched */
  configKey: string
  /** validates it (outside input), as the lease rules see it */
  parseConfig(value: unknown): NetworkConfig
  /** the backend every lease of the space carries; absent: the cluster backend's, with the datapath's data */
  backend?: LeaseValue['backend']
}

export const CLUSTER_SPACE: LeaseSpace = {
  label: 'the cluster network',
  keys: CLUSTER_LEASES,
  configKey: NETWORK_CONFIG_KEY,
  parseConfig: parseNetworkConfig,
}

/** Time as the lease manager sees it: real by default, the simulator's virtual clock in src/ipam/sim.ts. */
export interface LeaseClock {
  now(): number
  /** calls fn after ms; returns cancel */
  after(ms: number, fn: () => void): () => void
}

const REAL_CLOCK: LeaseClock = {
  now: Date.now,
  after(ms, fn) {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  },
}

/** Where the last subnet is remembered across restarts (`<runDir>/subnet.env` by default). */
export interface SubnetMemory {
  read(): Promise<Cidr | undefined>
  write(e: SubnetEnv): Promise<void>
}

export interface LeaseManagerInit {
  /** lease lifetime (default in the agent: 24 h, as flannel) */
  ttlMs: number
  /** renewal period (default: a third of the TTL, at most 60 s, so the confirmed renewal is never far behind) */
  renewMs?: number
  /** bound on the clock difference between any two hosts (default 60 s, the store's own refusal bound) */
  driftMs?: number
  /** time allowed for a renewal to reach a host whose heartbeat we received (default 3 s: gossip + a sync round) */
  confirmDelayMs?: number
  /** a majority heard from within this counts as "in reach" for a new claim (default 10 s) */
  contactMs?: number
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
  /**
   * When this host last heard from each live member otherwise than by its node record (a probe it
   * answered: src/cluster/membership.ts). Node records are rewritten only every refresh (10 s);
   * without this, confirming a claim or renewal would wait for them.
   */
  heardAt?: () => ReadonlyMap<string, number>
  /** default 20 s */
  joinTimeoutMs?: number
  /** tests pin the underlay and the subnet choice */
  underlay?: () => Promise<Underlay>
  random?: () => number
  clock?: LeaseClock
  subnetMemory?: SubnetMemory
  /** default: the cluster network */
  space?: LeaseSpace
}

/** The timing the safety argument needs, checked once (README.md "Why no address is used twice"). */
export function leaseTiming(init: LeaseManagerInit): {
  ttlMs: number
  renewMs: number
  driftMs: number
  confirmDelayMs: number
  contactMs: number
} {
  const ttlMs = init.ttlMs
  const renewMs = init.renewMs ?? Math.min(Math.floor(ttlMs / 3), 60_000)
  const driftMs = init.driftMs ?? 60_000
  const confirmDelayMs = init.confirmDelayMs ?? 3000
  const contactMs = init.contactMs ?? 10_000
  // Fencing starts at half the lease after the confirmed renewal, withdrawal at TTL − 2·drift − delay; in steady
  // state the confirmed renewal lags by renew + delay + a heartbeat, which must leave both well ahead.
  if (ttlMs / 2 <= 2 * driftMs + confirmDelayMs || ttlMs / 2 <= renewMs + confirmDelayMs + contactMs)
    throw new Error(
      `lease TTL ${ttlMs} ms is too short for drift ${driftMs} ms, renewal ${renewMs} ms, confirm delay ${confirmDelayMs} ms and contact ${contactMs} ms: half the TTL must exceed 2·drift + delay and renewal + delay + contact`,
    )
  return { ttlMs, renewMs, driftMs, confirmDelayMs, contactMs }
}

interface Claim {
  subnet: Cidr
  value: LeaseValue
  /** when the record was last written (local clock) */
  lastPut: number
  /** defined while settling */
  settleUntil?: number
  /**
   * While settling: the claim counts only once a majority has been heard from since this time (the first
   * write + 2·confirmDelay): those members held the claim, and we hold every claim they held when they did.
   */
  heardBy?: number
  /** HLC walls of the writes of this claim not yet known to be confirmed, oldest first */
  unconfirmed: number[]
  /** wall of the newest write a majority had heard of (or the first write, before any is confirmed) */
  confirmedAt: number
}

export class LeaseManager extends EventEmitter<LeaseEvents> implements Startable, LeaseComponent {
  private readonly log: Logger
  private readonly metrics: IpamMetrics
  private cfg?: NetworkConfig
  private underlay?: Underlay
  private claim?: Claim
  private lease?: CurrentLease
  private lastView?: LeaseView
  private gaveUp?: Cidr
  private backendData: BackendData = {}
  private st: LeaseStatus = {
    state: 'waiting-config',
    reason: 'no network config in the store yet',
    since: new Date().toISOString(),
  }
  private reported = new Set<string>()
  private badConfigSeen?: string
  private startedAt = 0
  private seeded = false
  private resumeTried = false
  private joinedAt?: number
  private dirty = false
  private wakeUp?: () => void
  private unwatch: (() => void)[] = []
  private loop?: Promise<void>
  private readonly stopping = new AbortController()
  private readonly timing: ReturnType<typeof leaseTiming>
  private readonly clock: LeaseClock
  private readonly memory: SubnetMemory
  private readonly space: LeaseSpace

  constructor(
    private readonly c: LeaseManagerComponents,
    private readonly init: LeaseManagerInit,
  ) {
    super()
    this.space = init.space ?? CLUSTER_SPACE
    this.log = c.logger.child({ component: 'ipam', ...(init.space ? { leases: init.space.label } : {}) })
    this.metrics = ipamMetrics(c.metrics)
    // the gauge is the host subnet's; a named network's state is in its status (GET /v1/networks)
    if (this.space === CLUSTER_SPACE)
      leaseStateGauge(c.metrics, Object.keys(LEASE_STATES), () => this.st.state)
    if (init.seed !== false) parseNetworkConfig(init.seed) // refuse a bad seed at start-up, not minutes later
    this.timing = leaseTiming(init)
    this.clock = init.clock ?? REAL_CLOCK
    this.memory = init.subnetMemory ?? {
      read: () => readSubnetEnv(c.config.runDir),
      write: (e) => writeSubnetEnv(c.config.runDir, e),
    }
  }

  private now(): number {
    return this.clock.now()
  }

  current(): CurrentLease | undefined {
    return this.lease
  }

  withdrawn(): Cidr | undefined {
    return this.lease ? undefined : this.gaveUp
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
    this.startedAt = this.now()
    const wake = () => this.wake()
    this.unwatch = [
      this.c.store.watch(this.space.keys.prefix, wake),
      this.c.store.watch(this.space.configKey, wake),
    ]
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    for (const u of this.unwatch) u()
    this.wake()
    await this.loop
    // The lease record stays: a restart within the TTL keeps the subnet.
  }

  async setBackendData(data: BackendData): Promise<void> {
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
        delay = await this.step(this.now())
      } catch (err) {
        this.metrics.stepErrors.inc()
        this.log.error({ err }, `lease step failed: ${errorMessage(err)}`)
        this.setStatus('error', errorMessage(err))
        delay = this.retryMs
      }
      if (this.dirty) continue
      await new Promise<void>((resolve) => {
        const done = () => {
          cancel()
          for (const s of signals) s.removeEventListener('abort', done)
          this.wakeUp = undefined
          resolve()
        }
        const cancel = this.clock.after(Math.max(0, delay), done)
        for (const s of signals) s.addEventListener('abort', done, { once: true })
        this.wakeUp = done
      })
    }
  }

  /** One pass of the state machine; returns how long to sleep unless something changes first. */
  private async step(now: number): Promise<number> {
    // A restart within the lease resumes at once, before hearing from anyone: nothing in any datapath changes.
    if (!this.resumeTried) {
      this.resumeTried = true
      if (await this.resume(now)) return this.keep(this.cfg as NetworkConfig, now)
      // not ours any more (expired, withdrawn or lost while the agent was down): the bridge must not keep serving it
      this.gaveUp = await this.memory.read()
    }
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
        `underlay address ${this.underlay.address} is inside ${this.space.label} ${cfg.Network}; other hosts would refuse the lease`,
      )
      return this.retryMs
    }
    const view = this.validLeases(cfg, now)
    this.lastView = view
    this.reportInvalid(view)

    if (this.claim) {
      const lostWhy = this.claimLost(view, cfg, now)
      if (lostWhy) await this.drop(lostWhy)
    }
    if (this.claim) return this.keep(cfg, now)
    const heard = this.heardSince(now)
    if (now - heard > this.timing.contactMs) {
      this.setStatus(
        'isolated',
        `no majority of the cluster heard from since ${new Date(heard).toISOString()}: a new claim could take a subnet still in use on the other side`,
      )
      return Math.min(1000, this.retryMs)
    }
    return this.newClaim(cfg, view)
  }

  private validLeases(cfg: NetworkConfig, now: number): LeaseView {
    return validLeases(this.c.store.list(this.space.keys.prefix), cfg, now, this.space.keys)
  }

  private get ownKey(): string {
    return this.space.keys.key(this.c.store.self)
  }

  /** See majorityHeardSince: members are the node records this host holds, live or expired, until reaped. */
  private heardSince(now: number): number {
    return majorityHeardSince(
      this.c.store.listHeld(NODE_PREFIX),
      this.c.store.self,
      now,
      this.init.heardAt?.(),
    )
  }

  /**
   * After a restart: our own lease record, if it is still live, valid (we hold the older claim) and not past
   * the withdrawal time of its last confirmation, is the same claim continuing. It is taken back without a
   * settle period and without waiting for peers, so the datapath (which kept running) is left as it was.
   */
  private async resume(now: number): Promise<boolean> {
    const rec = this.c.store.get(this.ownKey)
    if (!rec || rec.ttlMs === undefined) return false
    const cfg = await this.readConfig(now)
    if (!cfg) return false
    const own = validLeases([rec], cfg, now, this.space.keys).valid[0]
    const view = this.validLeases(cfg, now)
    if (!own || !view.valid.some((l) => l.peerId === own.peerId && l.value.claimedAt === own.value.claimedAt))
      return false
    // a claim whose record has no confirmedAt never settled, so it was never acquired: not ours to resume
    const confirmedAt = own.value.confirmedAt
    if (confirmedAt === undefined) return false
    if (now >= this.withdrawAt(confirmedAt)) {
      this.log.warn(
        { subnet: own.value.subnet },
        `not resuming lease ${own.value.subnet}: unconfirmed since ${new Date(confirmedAt).toISOString()}, past its withdrawal time`,
      )
      await this.c.store.delete(this.ownKey)
      return false
    }
    if (!this.underlay) this.underlay = await (this.init.underlay ?? (() => detectUnderlay(this.want())))()
    this.lastView = view
    // lastPut is the record's own write time, so a restart changes neither renewal nor expiry
    this.claim = {
      subnet: own.subnet,
      value: own.value,
      lastPut: rec.version.wall,
      unconfirmed: [],
      confirmedAt,
    }
    this.log.info({ subnet: own.value.subnet }, `resumed lease ${own.value.subnet} (still live)`)
    return true
  }

  private fenceAt(confirmedAt: number): number {
    return confirmedAt + this.timing.ttlMs / 2
  }

  /**
   * Others can see our lease expire no earlier than confirmedAt + TTL on their clocks, which may run ahead of
   * ours by the drift bound; the heartbeat times behind confirmedAt may too. Withdrawal comes before both.
   */
  private withdrawAt(confirmedAt: number): number {
    return confirmedAt + this.timing.ttlMs - 2 * this.timing.driftMs - this.timing.confirmDelayMs
  }

  /** Moves confirmedAt to the newest write a majority has heard of since: heard from at least confirmDelay after it. */
  private confirm(claim: Claim, now: number): void {
    const heard = this.heardSince(now)
    while (claim.unconfirmed.length && (claim.unconfirmed[0] as number) <= heard - this.timing.confirmDelayMs)
      claim.confirmedAt = Math.max(claim.confirmedAt, claim.unconfirmed.shift() as number)
  }

  private want(): { address?: string; ifname?: string } {
    return { address: this.c.config.underlayAddress, ifname: this.c.config.underlayInterface }
  }

  /** The valid network config in the store, seeding it when the cluster has none. A bad stored config keeps the last good one. */
  private async readConfig(now: number): Promise<NetworkConfig | undefined> {
    const rec = this.c.store.get(this.space.configKey)
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
      const cfg = this.space.parseConfig(rec.value)
      this.badConfigSeen = undefined
      return this.adopt(cfg)
    } catch (err) {
      const why = `${this.space.configKey} written by ${rec.owner} is invalid, keeping the last valid one: ${errorMessage(err)}`
      if (this.badConfigSeen !== why) {
        this.badConfigSeen = why
        this.metrics.invalidNetworkConfig.inc()
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
    if (now >= claim.lastPut + this.timing.ttlMs)
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

  /**
   * Gives the claim up at once: current() is undefined from here, so the datapath withdraws the bridge
   * address, CNI ADD is refused until a new lease settles, and the allocations left in the old subnet are
   * reported (`plexctl subnets`, `plexctl endpoints`). `withdraw` also deletes the record, so an old claim
   * renewed where nobody could see it cannot win the subnet back when the partition heals.
   */
  private async drop(reason: string, withdraw = false): Promise<void> {
    const claim = this.claim as Claim
    this.claim = undefined
    this.metrics.leaseEvents.inc({ event: withdraw ? 'withdrawn' : 'lost' })
    if (withdraw) await this.c.store.delete(this.ownKey)
    const previous = this.lease
    this.lease = undefined
    if (previous) {
      this.gaveUp = previous.cidr
      this.log.warn(
        { subnet: previous.subnet, event: withdraw ? 'lease-withdrawn' : 'lease-lost' },
        `lost lease ${previous.subnet}: ${reason}; bridge address withdrawn, new containers refused until a new lease settles`,
      )
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
    this.confirm(claim, now)
    const withdrawAt = this.withdrawAt(claim.confirmedAt)
    if (now >= withdrawAt) {
      await this.drop(
        `no majority of the cluster has heard of a renewal since ${new Date(claim.confirmedAt).toISOString()}; withdrawing before anyone may reclaim it`,
        true,
      )
      return 0
    }
    const backend = this.backendFor(cfg, claim.value.backend)
    if (JSON.stringify(backend) !== JSON.stringify(claim.value.backend)) {
      await this.publish({ ...claim.value, backend }, now) // same claimedAt: a change, not a new claim
    }
    if (claim.settleUntil !== undefined) {
      if (now < claim.settleUntil) return claim.settleUntil - now
      const waiting = this.settleWait(claim, now)
      // renewed while it waits, so the renewals a majority confirms keep up and the lease is not fenced on arrival
      if (waiting && now >= claim.lastPut + this.timing.renewMs) await this.publish(claim.value, now)
      if (waiting) {
        this.setStatus(
          'settling',
          `claimed ${claim.value.subnet}; waiting until ${waiting}`,
          claim.value.subnet,
        )
        // heartbeats do not wake this loop
        return Math.min(250, withdrawAt - now)
      }
      claim.settleUntil = undefined
      claim.heardBy = undefined
      // the record now says the claim settled (it carries confirmedAt): only such a claim resumes after a restart
      await this.publish(claim.value, now)
    }
    const next = this.describe(cfg)
    const previous = this.lease
    if (!previous || JSON.stringify(previous) !== JSON.stringify(next)) {
      await this.memory.write({
        network: cfg.Network,
        subnet: next.cidr,
        mtu: next.mtu,
        ipMasq: cfg.IPMasq,
      })
      // current() changes in the same tick as the event, so no consumer sees one without the other
      this.lease = next
      this.holdStatus(claim, now)
      if (previous) this.emitSafe('changed', { previous, current: next })
      else {
        this.metrics.leaseEvents.inc({ event: 'acquired' })
        this.log.info({ subnet: next.subnet, claimedAt: next.claimedAt }, `acquired lease ${next.subnet}`)
        this.emitSafe('acquired', next)
      }
    } else this.holdStatus(claim, now)
    const renewAt = claim.lastPut + this.timing.renewMs
    // woken every second at most: confirmation follows the heartbeats, which do not wake this loop
    const recheck = Math.min(1000, withdrawAt - now)
    if (now >= renewAt) {
      try {
        await this.publish(claim.value, now)
        this.metrics.leaseEvents.inc({ event: 'renewed' })
      } catch (err) {
        this.metrics.leaseEvents.inc({ event: 'renew_failed' })
        this.log.warn({ err }, `renewing lease ${claim.value.subnet} failed: ${errorMessage(err)}`)
        return Math.min(1000, this.retryMs)
      }
      return Math.min(this.timing.renewMs, recheck)
    }
    return Math.min(renewAt - now, recheck)
  }

  /**
   * What a settled claim still waits for before it counts (README.md rule 3): a majority that has heard of
   * it, and no younger rival claim in sight. Of two claims that race, the later to reach a member both
   * heard from sees the other before it counts; a younger rival that never saw ours may have counted
   * already, so ours waits until the rival's record gives the subnet up (it loses on seeing ours) or expires.
   */
  private settleWait(claim: Claim, now: number): string | undefined {
    const heard = this.heardSince(now)
    if (claim.heardBy !== undefined && heard < claim.heardBy)
      return `a majority of the cluster has heard of the claim (heard from since ${new Date(heard).toISOString()})`
    const self = this.c.store.self
    const rival = this.lastView?.invalid.find(
      (i) => i.kind === 'conflict' && i.heldBy === self && i.subnet === claim.value.subnet,
    )
    return rival ? `the younger rival claim of ${rival.owner} gives the subnet up` : undefined
  }

  /** acquired, or fenced once half the lease has passed without a confirmed renewal (CNI ADD is refused). */
  private holdStatus(claim: Claim, now: number): void {
    const fenceAt = this.fenceAt(claim.confirmedAt)
    const iso = (t: number) => new Date(t).toISOString()
    const times = {
      confirmedAt: iso(claim.confirmedAt),
      fenceAt: iso(fenceAt),
      withdrawAt: iso(this.withdrawAt(claim.confirmedAt)),
    }
    if (now < fenceAt) {
      this.setStatus('acquired', undefined, claim.value.subnet, times)
      return
    }
    if (this.st.state !== 'fenced') {
      this.metrics.leaseEvents.inc({ event: 'fenced' })
      this.log.warn(
        { subnet: claim.value.subnet, event: 'lease-fenced', ...times },
        `lease ${claim.value.subnet} fenced: no majority of the cluster has heard of a renewal since ${times.confirmedAt}; new containers are refused, the lease is withdrawn at ${times.withdrawAt} unless one is confirmed`,
      )
    }
    this.setStatus(
      'fenced',
      `no majority of the cluster has heard of a renewal since ${times.confirmedAt}: new containers are refused; withdrawn at ${times.withdrawAt}`,
      claim.value.subnet,
      times,
    )
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

  private backendFor(cfg: NetworkConfig, held?: LeaseValue['backend']): LeaseValue['backend'] {
    // The datapath starts after ipam: until it says what it publishes, a resumed lease keeps what it
    // carried (a WireGuard key, a VTEP MAC), or every peer would drop this host's tunnel over a restart.
    if (this.space.backend) return this.space.backend
    if (held?.type === cfg.Backend.Type && Object.keys(this.backendData).length === 0) return held
    if (cfg.Backend.Type === 'wireguard') {
      const { publicKey, endpoint } = this.backendData
      return { type: 'wireguard', ...(publicKey && endpoint ? { publicKey, endpoint } : {}) }
    }
    if (cfg.Backend.Type !== 'vxlan') return { type: cfg.Backend.Type }
    return {
      type: 'vxlan',
      vni: cfg.Backend.VNI,
      ...(this.backendData.vtepMac ? { vtepMac: this.backendData.vtepMac } : {}),
    }
  }

  private async publish(value: LeaseValue, now: number): Promise<void> {
    const claim = this.claim as Claim
    const { confirmedAt: _, ...unsettled } = value
    const written = claim.settleUntil === undefined ? { ...value, confirmedAt: claim.confirmedAt } : unsettled
    const rec = await this.c.store.put(this.ownKey, this.space.keys.codec.encode(written), {
      ttlMs: this.timing.ttlMs,
    })
    claim.value = written
    claim.lastPut = now
    claim.unconfirmed.push(rec.version.wall)
  }

  /** Claim order: our own live lease, then the subnet in the last subnet.env, then a free one. */
  private async newClaim(cfg: NetworkConfig, view: LeaseView): Promise<number> {
    const self = this.c.store.self
    const ranges = networkRanges(cfg)
    const others = view.valid.filter((l) => l.peerId !== self)
    const free = (s: Cidr) => claimable(ranges, s) && !others.some((l) => overlaps(l.subnet, s))

    // Always a new claim, dated now: a live claim of ours that could keep its age was resumed at start-up.
    let subnet: Cidr
    let source: string
    const ownRec = this.c.store.get(this.ownKey)
    const last = await this.memory.read()
    if (last && free(last)) {
      subnet = last
      source = 'last subnet.env'
    } else {
      const pick = chooseSubnet(cfg, others, this.init.random)
      if ('reason' in pick) return this.noSubnet(pick.reason, !!ownRec)
      subnet = pick.subnet
      source = 'free subnet'
    }
    const value: LeaseValue = {
      subnet: formatCidr(subnet),
      publicIp: (this.underlay as Underlay).address,
      hostname: this.c.config.name,
      backend: this.backendFor(cfg),
      // a new claim is dated when it is made, not when this step began
      claimedAt: this.now(),
    }
    const at = this.now()
    this.claim = {
      subnet,
      value,
      lastPut: at,
      settleUntil: at + this.init.settleMs,
      unconfirmed: [],
      confirmedAt: at,
    }
    try {
      await this.publish(value, at)
    } catch (err) {
      this.claim = undefined
      throw err
    }
    this.claim.heardBy = (this.claim.unconfirmed[0] as number) + 2 * this.timing.confirmDelayMs
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
    if (haveRecord) await this.c.store.delete(this.ownKey)
    if (this.st.state !== 'no-subnet' || this.st.reason !== reason)
      this.log.warn(`${reason}; retrying every ${this.retryMs} ms`)
    this.metrics.noFreeSubnet.inc()
    this.setStatus('no-subnet', reason)
    return this.retryMs
  }

  private reportInvalid(view: LeaseView): void {
    const now = new Set(view.invalid.map((i) => `${i.key} ${i.kind} ${i.subnet ?? ''} ${i.heldBy ?? ''}`))
    for (const i of view.invalid) {
      const id = `${i.key} ${i.kind} ${i.subnet ?? ''} ${i.heldBy ?? ''}`
      if (this.reported.has(id)) continue
      this.metrics.invalidLeases.inc({ kind: i.kind })
      this.log.warn({ key: i.key, owner: i.owner, kind: i.kind }, `ignoring lease ${i.key}: ${i.reason}`)
    }
    this.reported = now
  }

  private setStatus(
    state: LeaseState,
    reason?: string,
    subnet?: string,
    times?: Pick<LeaseStatus, 'confirmedAt' | 'fenceAt' | 'withdrawAt'>,
  ): void {
    const same = this.st.state === state && this.st.reason === reason && this.st.subnet === subnet
    this.st = {
      state,
      since: same ? this.st.since : new Date(this.now()).toISOString(),
      ...(reason ? { reason } : {}),
      ...(subnet ? { subnet } : {}),
      ...times,
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
