// The reconciler: desired state from the store (pure, desired.ts), actual
// state from netlink and firewall dumps (kernel.ts), one batch of changes
// (diff.ts). Runs on every relevant change (debounced) and on a timer, so
// drift is repaired within one interval; everything is idempotent.

import { formatCidr } from '../ipam/cidr.js'
import { errorMessage } from '../lib/errors.js'
import type { Explanation } from '../lib/explain.js'
import type { Logger } from '../lib/log.js'
import { PassLoop } from '../lib/pass-loop.js'
import type { Startable } from '../lib/startable.js'
import type { WireguardDriver, WireguardStatus } from './backend/wireguard/device.js'
import { type DesiredInput, desiredState } from './desired.js'
import { type Change, changeTarget, desiredTargets, diffState, routeKey } from './diff.js'
import { DropCounts } from './firewall/drops.js'
import type { FirewallBackend } from './firewall/index.js'
import { expectedView, type FirewallView } from './firewall/model.js'
import { applyChanges, readActual, readUnderlay } from './kernel.js'
import type { DatapathMetrics } from './metrics.js'
import { BRIDGE_NAME, type DesiredState, type RemotePlan } from './model.js'
import type { Netlink } from './netlink.js'
import { datapathOrigins, type OriginSources } from './origins.js'

/** What one pass starts from; the underlay is named here and read from the kernel by the pass. */
export interface PassInput extends Omit<DesiredInput, 'underlay'> {
  underlay: { ifname: string; address: string }
  /** the store keys behind the endpoints and the providers' rules, for explain() */
  sources?: OriginSources
  /**
   * Per bridge (the cluster's and each bridge network's), ms epoch: its lease's withdrawal time. The
   * bridge address lives until then in the kernel itself and every pass extends it, so an agent that is
   * down when it should withdraw still loses the address in time (src/ipam/README.md "Why no address is
   * used twice").
   */
  bridgeUntil?: BridgeLifetime[]
}

export interface BridgeLifetime {
  bridge: string
  /** ms epoch */
  until: number
}

/**
 * The store-side inputs of a pass, or why there is nothing to program yet (no lease, no network config).
 * `withdraw`: the bridge address of a subnet this host gave up, removed at once (src/ipam/README.md): a
 * host that lost its lease must not answer for a gateway another host may now serve.
 */
export type InputSource = () =>
  | PassInput
  | { waiting: string; withdraw?: { address: string; prefixLen: number } }

export interface ReconcilerOptions {
  nl: Netlink
  firewall: FirewallBackend
  source: InputSource
  logger: Logger
  metrics: DatapathMetrics
  /** the store's modify index: what a pass has applied, for `converged()` */
  index: () => number
  /** a key's modify index in the store, for `explain()` (without it explanations name keys with index 0) */
  indexOf?: (key: string) => number
  /** timer period; drift is repaired within it (default 3000) */
  intervalMs?: number
  /** coalesces bursts of store changes (default 50) */
  debounceMs?: number
  /**
   * a timer pass reads the firewall back at least this often (default 30000)
   * even when its generation says nothing changed: the drop counters come
   * with the rules
   */
  firewallReadMaxMs?: number
  /** runs and configures the wireguard backend's device */
  wireguard?: WireguardDriver
}

export interface RouteStatus {
  dst: string
  gateway: string
  dev: string
  onlink: boolean
  host?: string
  mode?: RemotePlan['mode']
  programmed: boolean
}

export interface PassReport {
  at: string
  durationMs: number
  changes: number
  repairs: number
  failed: { change: string; error: string; code?: string }[]
}

export interface DatapathStatus {
  state: 'waiting' | 'ok' | 'degraded' | 'error'
  reason?: string
  backend?: string
  /** this host's subnet */
  subnet?: string
  firewall: { backend: string; variant?: string }
  mtu?: number
  routes: RouteStatus[]
  remotes: (RemotePlan & { programmed: boolean })[]
  /** drift repaired since start, by kind, plus total */
  repairs: Record<string, number>
  passes: number
  lastPass?: PassReport
  /** wireguard backend: the device process and its peers as it reports them (handshakes, bytes) */
  wireguard?: WireguardStatus
}

/** stands for firewall rules a light pass has not confirmed: differs from any desired view */
const UNCONFIRMED_FIREWALL: FirewallView = {
  hooked: false,
  rules: { forward: [], input: [], prerouting: [], output: [], postrouting: [], bridge: [] },
}

const REPAIR_KIND: Partial<Record<Change['kind'], string>> = {
  'route-set': 'route',
  'neigh-set': 'neigh',
  'fdb-set': 'fdb',
  'link-create': 'link',
  'firewall-apply': 'firewall',
  'forwarding-on': 'forwarding',
  'switch-set': 'switch',
}

function describe(c: Change): string {
  switch (c.kind) {
    case 'link-create':
      return `create link ${c.link.name}`
    case 'link-delete':
      return `delete link ${c.name}`
    case 'link-set':
      return `set link ${c.name}`
    case 'addr-add':
    case 'addr-del':
      return `${c.kind} ${c.address} dev ${c.dev}`
    case 'route-set':
    case 'route-del':
      return `${c.kind} ${c.route.dst} via ${c.route.gateway} dev ${c.route.dev}`
    case 'neigh-set':
    case 'neigh-del':
      return `${c.kind} ${c.neighbour.ip} dev ${c.neighbour.dev}`
    case 'fdb-set':
    case 'fdb-del':
      return `${c.kind} ${c.fdb.mac} dst ${c.fdb.dst} dev ${c.fdb.dev}`
    case 'switch-set':
      return `${c.switch.kind} ${c.switch.on ? 'on' : 'off'} dev ${c.switch.dev}`
    default:
      return c.kind
  }
}

export class Reconciler implements Startable {
  private readonly log: Logger
  private readonly loop: PassLoop
  /** what the last pass left programmed: a change re-creating one of these is a drift repair */
  private confirmed = new Set<string>()
  private confirmedFirewall?: string
  /**
   * The firewall's generation when a full pass last read it and found it as
   * that pass wanted, and when: a timer pass that finds the same generation
   * trusts the rules without listing them (three processes every 3 s were
   * most of an idle agent's CPU). Undefined after the pass changed them.
   */
  private firewallRead?: { generation: number; at: number }
  /** per bridge: the ifindex and lease end its address lifetime was last set for */
  private lifetimeSet = new Map<string, string>()
  /** reconcile() asked for a full pass: it reads the firewall whatever the generation */
  private readWanted = false
  private forwardingConfirmed = false
  /** stop() was called: no more tool processes are started ahead */
  private stopping = false
  private refusedSeen = new Set<string>()
  private st: DatapathStatus
  private readonly repairs: Record<string, number> = { total: 0 }
  private readonly drops = new DropCounts()
  /** WireGuard peers (public keys) the last pass left configured: one added again is a repair */
  private confirmedPeers = new Set<string>()
  /** why the WireGuard device could not be started or configured in the last pass */
  private wgFailure?: string
  /** what the last pass computed its desired state from, and that state (explain) */
  private last?: { input: DesiredInput; desired: DesiredState; sources: OriginSources }
  /**
   * The desired state but its firewall (and the bridges' lease ends) the last
   * pass applied without a failure, as text; its firewall is confirmedFirewall.
   * A light pass that computes both the same has nothing to do.
   */
  private applied?: string
  /** a trigger since the last pass start asked for a pass whatever the desired state */
  private mustRun = false

  constructor(private readonly o: ReconcilerOptions) {
    this.log = o.logger.child({ component: 'datapath' })
    this.loop = new PassLoop({
      intervalMs: o.intervalMs ?? 3000,
      debounceMs: o.debounceMs ?? 50,
      index: o.index,
      pass: async (full) => {
        try {
          await this.pass(full)
        } finally {
          // once this pass's waiters have their answer (they resume before any
          // immediate runs): the next batch's processes start off their path
          setImmediate(() => {
            if (!this.stopping) this.o.firewall.prepare()
          })
        }
      },
      explain: {
        origins: () =>
          this.last ? datapathOrigins(this.last.input, this.last.desired, this.last.sources) : [],
        indexOf: o.indexOf ?? (() => 0),
      },
      onError: (err) => {
        this.o.metrics.passes.inc({ result: 'failed' })
        this.st = { ...this.st, state: 'error', reason: errorMessage(err) }
        this.log.error({ err }, `datapath pass failed: ${errorMessage(err)}`)
      },
    })
    this.st = {
      state: 'waiting',
      reason: 'not started',
      firewall: { backend: o.firewall.name, ...(o.firewall.variant ? { variant: o.firewall.variant } : {}) },
      routes: [],
      remotes: [],
      repairs: this.repairs,
      passes: 0,
    }
  }

  start(): Promise<void> {
    return this.loop.start()
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.loop.stop()
    this.o.firewall.release()
  }

  status(): DatapathStatus {
    return this.st
  }

  /**
   * Schedules a light pass after the debounce (store changes call this; the timer schedules full
   * ones). `skippable`: the change can matter only through the desired state (a lease record), so a
   * light pass that computes the one the last pass applied does nothing; any other trigger since
   * then makes it run.
   */
  trigger(delayMs?: number, full = false, skippable = false): void {
    if (!skippable) this.mustRun = true
    this.loop.trigger(delayMs, full)
  }

  /** which store records produced the kernel objects `subject` names, as the last pass computed them */
  explain(subject: string): Explanation[] {
    return this.loop.explain(subject)
  }

  /** resolves once a pass that read the store at `index` or later has run (PassLoop.converged) */
  converged(index: number, timeoutMs: number): Promise<void> {
    return this.loop.converged(index, timeoutMs)
  }

  /**
   * Runs one pass now, or one more right after the pass in progress; resolves
   * when that pass is done. A full pass also reads the firewall back; a light
   * one trusts the rules the last pass confirmed (one process spawn less, so
   * a new lease is programmed sooner).
   */
  reconcile(full = true): Promise<void> {
    if (full) this.readWanted = true
    this.mustRun = true
    return this.loop.run(full)
  }

  private async withdrawBridgeAddress(w: { address: string; prefixLen: number }): Promise<void> {
    const bridge = await this.o.nl.getLink(BRIDGE_NAME)
    if (!bridge) return
    const held = await this.o.nl.addresses(bridge.index)
    if (!held.some((a) => a.address === w.address && a.prefixLen === w.prefixLen)) return
    await this.o.nl.deleteAddress(bridge.index, w.address, w.prefixLen)
    this.o.metrics.bridgeAddressesWithdrawn.inc()
    this.log.warn(
      `withdrew ${w.address}/${w.prefixLen} from ${BRIDGE_NAME}: this host no longer holds that subnet`,
    )
  }

  /** Sets a bridge's addresses to expire at `until` (whole seconds, rounded down: never later). */
  private async bridgeLifetime(
    desired: DesiredState,
    index: Map<string, number>,
    { bridge: name, until }: BridgeLifetime,
  ): Promise<boolean> {
    const bridge = desired.links.find((l) => l.name === name)
    const ifindex = index.get(name)
    const seconds = Math.floor((until - Date.now()) / 1000)
    if (!bridge || ifindex === undefined || seconds < 1) return false
    let ok = true
    for (const a of bridge.addresses) {
      const [ip, len] = a.split('/') as [string, string]
      try {
        await this.o.nl.setAddressLifetime(ifindex, ip, Number(len), seconds)
      } catch (err) {
        ok = false
        this.o.metrics.changeErrors.inc()
        this.log.error({ err }, `could not extend the lifetime of ${a} on ${name}: ${errorMessage(err)}`)
      }
    }
    return ok
  }

  /**
   * The kernel counts a lifetime down itself: it is set again only when the lease's end moved (a
   * renewal, every leaseRenewMs) or this pass changed the kernel (an address may have been added anew).
   */
  private async bridgeLifetimes(
    desired: DesiredState,
    index: Map<string, number>,
    lifetimes: BridgeLifetime[],
    changed: boolean,
  ): Promise<void> {
    const set = new Map<string, string>()
    for (const l of lifetimes) {
      const key = `${index.get(l.bridge)}|${l.until}`
      if (!changed && this.lifetimeSet.get(l.bridge) === key) set.set(l.bridge, key)
      else if (await this.bridgeLifetime(desired, index, l)) set.set(l.bridge, key)
    }
    this.lifetimeSet = set
  }

  private async pass(full: boolean): Promise<void> {
    const started = Date.now()
    const mustRun = this.mustRun
    this.mustRun = false
    const src = this.o.source()
    if ('waiting' in src) {
      this.applied = undefined
      this.st = { ...this.st, state: 'waiting', reason: src.waiting }
      if (src.withdraw) await this.withdrawBridgeAddress(src.withdraw)
      return
    }
    const input: DesiredInput = {
      ...src,
      underlay: await readUnderlay(this.o.nl, src.underlay.ifname, src.underlay.address),
    }
    const desired = desiredState(input)
    this.last = { input, desired, sources: src.sources ?? { endpoints: [], provided: {} } }
    this.reportRefused(desired)
    const firewallKey = JSON.stringify(expectedView(desired.firewall))
    // A lease record that leaves the desired state as the last pass applied
    // it (another host's lease renewed: every host renews every
    // leaseRenewMs, so N/60 a second reach each of N hosts) has nothing to
    // program; drift is the timer's full pass's to find, and it never skips.
    // (the firewall is compared by its key: 100 KB of text at 334 containers, not serialised again)
    const appliedKey = JSON.stringify([{ ...desired, firewall: undefined }, src.bridgeUntil])
    if (!full && !mustRun && appliedKey === this.applied && firewallKey === this.confirmedFirewall) {
      this.o.metrics.passes.inc({ result: 'unchanged' })
      return
    }
    this.applied = undefined
    const peerRepairs = await this.wireguard(desired)
    const { read, generation } = full ? await this.mustReadFirewall(firewallKey) : { read: false }
    // A light pass trusts the rules the last pass confirmed, as does a timer
    // pass when nothing has committed to the firewall since they were read.
    // Rules not confirmed are rewritten whole anyway, so they need no reading
    // either: a new published port costs one firewall process, not three.
    const firewallView = read
      ? () => this.o.firewall.read(desired.firewall)
      : this.confirmedFirewall === firewallKey
        ? () => expectedView(desired.firewall)
        : () => UNCONFIRMED_FIREWALL
    const { actual, index } = await readActual(this.o.nl, desired, firewallView)
    if (read) {
      for (const [section, n] of this.drops.observe(desired.firewall, actual.firewall.packets ?? {}))
        this.o.metrics.firewallDropped.inc({ section }, n)
    }
    const changes = diffState(desired, actual)
    const repairs = changes.filter((c) => this.isRepair(c, firewallKey))
    if (peerRepairs.length) {
      this.repairs.peer = (this.repairs.peer ?? 0) + peerRepairs.length
      this.repairs.total = (this.repairs.total ?? 0) + peerRepairs.length
      this.o.metrics.driftRepaired.inc({ kind: 'peer' }, peerRepairs.length)
      this.log.warn({ peers: peerRepairs }, `repaired ${peerRepairs.length} WireGuard peers`)
    }
    const result = changes.length
      ? await applyChanges(this.o.nl, changes, index, desired, this.o.firewall)
      : undefined
    const failed = new Set(result?.failed.map((f) => f.change) ?? [])
    await this.bridgeLifetimes(desired, index, src.bridgeUntil ?? [], changes.length > 0)
    for (const c of repairs) {
      if (failed.has(c)) continue
      const kind = REPAIR_KIND[c.kind] as string
      this.repairs[kind] = (this.repairs[kind] ?? 0) + 1
      this.repairs.total = (this.repairs.total ?? 0) + 1
      this.o.metrics.driftRepaired.inc({ kind })
    }
    if (repairs.length)
      this.log.warn({ repaired: repairs.map(describe) }, `repaired ${repairs.length} drifted kernel entries`)

    this.confirmed = desiredTargets(desired)
    for (const c of failed) {
      const t = changeTarget(c)
      if (t) this.confirmed.delete(t)
    }
    const firewallFailed = [...failed].some((c) => c.kind === 'firewall-apply')
    this.confirmedFirewall = firewallFailed ? undefined : firewallKey
    // our own batch moved the generation: the next timer pass reads what it made
    if (changes.some((c) => c.kind === 'firewall-apply')) this.firewallRead = undefined
    else if (read && generation !== undefined) this.firewallRead = { generation, at: started }
    this.forwardingConfirmed = ![...failed].some((c) => c.kind === 'forwarding-on')
    if (failed.size) {
      this.o.metrics.changeErrors.inc(failed.size)
      this.log.error(
        { failed: result?.failed.map((f) => `${describe(f.change)}: ${f.error}`) },
        'some datapath changes failed',
      )
    }
    if (!failed.size && this.wgFailure === undefined) this.applied = appliedKey
    this.o.metrics.passes.inc({ result: failed.size ? 'failed' : 'ok' })
    this.o.metrics.passDuration.observe((Date.now() - started) / 1000)
    this.st = this.statusOf(desired, input, failed, {
      at: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      changes: changes.length,
      repairs: repairs.length,
      failed: (result?.failed ?? []).map((f) => ({
        change: describe(f.change),
        error: f.error,
        ...(f.code ? { code: f.code } : {}),
      })),
    })
    if (changes.length)
      this.log.debug({ changes: changes.map(describe) }, `applied ${changes.length} datapath changes`)
  }

  /**
   * Whether a full pass lists the firewall: when reconcile() asked, when the
   * rules it wants changed, when the backend cannot tell its generation or
   * the generation moved since the last read, and at least every
   * firewallReadMaxMs. Also the generation it saw, read before the listing
   * (a commit during the listing moves it on, so the next pass lists again).
   */
  private async mustReadFirewall(firewallKey: string): Promise<{ read: boolean; generation?: number }> {
    const asked = this.readWanted
    this.readWanted = false
    const generation = await this.o.firewall.generation()
    const last = this.firewallRead
    const trusted =
      !asked &&
      last !== undefined &&
      this.confirmedFirewall === firewallKey &&
      generation === last.generation &&
      Date.now() - last.at < (this.o.firewallReadMaxMs ?? 30_000)
    if (trusted) this.o.metrics.firewallReadsSkipped.inc()
    return { read: !trusted, generation }
  }

  /**
   * wireguard: the device runs (started or adopted) and holds our key, port
   * and one peer per remote before the links and routes are diffed. Returns
   * the peers it added back although the last pass had left them configured.
   */
  private async wireguard(desired: DesiredState): Promise<string[]> {
    const wg = this.o.wireguard
    if (!wg) return []
    if (!desired.wireguard) {
      if (wg.status()) await wg.stop()
      this.confirmedPeers.clear()
      return []
    }
    try {
      await wg.ensure(desired.wireguard.ifname)
      const plan = await wg.configure(desired.wireguard)
      const repaired = plan.added.filter((k) => this.confirmedPeers.has(k))
      this.confirmedPeers = new Set(desired.wireguard.peers.map((p) => p.publicKey))
      this.wgFailure = undefined
      return repaired
    } catch (err) {
      // the bridge and the firewall are still converged; the device is retried next pass
      this.wgFailure = errorMessage(err)
      this.confirmedPeers.clear()
      this.o.metrics.changeErrors.inc()
      this.log.error({ err }, `WireGuard device: ${this.wgFailure}`)
      return []
    }
  }

  private isRepair(c: Change, firewallKey: string): boolean {
    if (c.kind === 'firewall-apply') return this.confirmedFirewall === firewallKey
    if (c.kind === 'forwarding-on') return this.forwardingConfirmed
    const t = changeTarget(c)
    return t !== undefined && this.confirmed.has(t)
  }

  private reportRefused(desired: DesiredState): void {
    const now = new Set<string>()
    for (const r of desired.remotes) {
      if (r.mode !== 'refused') continue
      const key = `${r.peerId} ${r.subnet} ${r.reason}`
      now.add(key)
      if (!this.refusedSeen.has(key)) {
        this.o.metrics.remotesRefused.inc()
        this.log.warn(
          { host: r.host, subnet: r.subnet, publicIp: r.publicIp },
          `not programming ${r.subnet}: ${r.reason}`,
        )
      }
    }
    this.refusedSeen = now
  }

  private statusOf(
    desired: DesiredState,
    input: DesiredInput,
    failed: Set<Change>,
    lastPass: PassReport,
  ): DatapathStatus {
    const failedRoutes = new Set(
      [...failed].flatMap((c) => (c.kind === 'route-set' ? [routeKey(c.route)] : [])),
    )
    const bySubnet = new Map(desired.remotes.map((r) => [r.subnet, r]))
    const routes = desired.routes.map((r) => {
      const plan = bySubnet.get(r.dst)
      return {
        ...r,
        ...(plan ? { host: plan.host, mode: plan.mode } : {}),
        programmed: !failedRoutes.has(r.dst),
      }
    })
    const degraded =
      failed.size > 0 || this.wgFailure !== undefined || desired.remotes.some((r) => r.mode === 'refused')
    return {
      ...this.st,
      state: degraded ? 'degraded' : 'ok',
      reason: this.wgFailure
        ? `WireGuard device: ${this.wgFailure}`
        : failed.size
          ? `${failed.size} change(s) failed`
          : degraded
            ? 'some remote leases are refused'
            : undefined,
      backend: input.network.Backend.Type,
      mtu: desired.links[0]?.mtu,
      routes,
      remotes: desired.remotes.map((r) => ({
        ...r,
        programmed: r.mode !== 'refused' && !failedRoutes.has(r.subnet),
      })),
      passes: this.st.passes + 1,
      lastPass,
      wireguard: this.o.wireguard?.status(),
      subnet: formatCidr(input.self.subnet),
    }
  }
}
