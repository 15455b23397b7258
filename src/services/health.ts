import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { endpointCodec, healthCodec } from '../store/codecs.js'
import type { CheckSpec, HealthValue } from '../store/records.js'
import {
  ENDPOINT_PREFIX,
  HEALTH_PREFIX,
  REGISTRATION_PREFIX,
  SERVICE_PREFIX,
  type Store,
} from '../store/types.js'
import { buildCatalog, localCatalogInput, type Member } from './catalog.js'
import { type CheckResult, type CheckTarget, runCheck } from './checks.js'
import { type HealthMetrics, healthMetrics, healthStatusGauge } from './metrics.js'
import { healthKey } from './model.js'

const DEBOUNCE_MS = 50
const PASS_GAP_MS = 500

export interface HealthComponents {
  store: Store
  peerId: string
  logger: Logger
  metrics: Metrics
}

/** Pure state step of one check: consecutive failures until `failures`, one success heals. */
export function nextStatus(
  prev: { status?: HealthValue['status']; fails: number },
  ok: boolean,
  failures: number,
): { status?: HealthValue['status']; fails: number } {
  if (ok) return { status: 'passing', fails: 0 }
  const fails = prev.fails + 1
  return { status: fails >= failures ? 'critical' : prev.status, fails }
}

class CheckRunner {
  private timer?: NodeJS.Timeout
  private state: { status?: HealthValue['status']; fails: number } = { fails: 0 }
  private stopped = false

  constructor(
    readonly key: string,
    readonly fingerprint: string,
    private readonly spec: CheckSpec,
    private readonly target: CheckTarget,
    private readonly member: Member,
    private readonly write: (key: string, v: HealthValue) => Promise<void>,
    private readonly metrics: HealthMetrics,
  ) {}

  /** the current verdict; pending until the first run decides (a success, or `failures` failures) */
  get status(): string {
    return this.state.status ?? 'pending'
  }

  start(): void {
    this.tick()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private tick(): void {
    if (this.stopped) return
    void runCheck(this.spec, this.target).then((r) => this.record(r))
  }

  private async record(r: CheckResult): Promise<void> {
    if (this.stopped) return
    const before = this.state.status
    this.metrics.runs.inc({ result: r.ok ? 'pass' : 'fail' })
    this.state = nextStatus(this.state, r.ok, this.spec.failures)
    // only transitions are written: a steady state costs no gossip
    if (this.state.status && this.state.status !== before) {
      await this.write(this.key, {
        endpointKey: this.member.endpointKey,
        service: this.member.service,
        check: this.spec.name,
        status: this.state.status,
        output: r.output,
        checkedAt: new Date().toISOString(),
      })
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => this.tick(), this.spec.intervalMs)
      this.timer.unref()
    }
  }
}

/**
 * Runs the health checks of the endpoints on this host (only the endpoint's own
 * host checks it: it can reach the container without crossing the overlay, and
 * the result is an owned record nobody else may forge). Results are HealthValue
 * records; the catalog takes a member with a critical one out, and one with checks in only once each has passed.
 */
export class HealthChecker implements Startable {
  private readonly runners = new Map<string, CheckRunner>()
  private readonly unwatch: (() => void)[] = []
  private timer?: NodeJS.Timeout
  private stopped = false
  private lastPass = 0
  private readonly metrics: HealthMetrics

  constructor(private readonly c: HealthComponents) {
    this.metrics = healthMetrics(c.metrics)
    healthStatusGauge(c.metrics, () => [...this.runners.values()].map((r) => r.status))
  }

  async start(): Promise<void> {
    const { store, peerId } = this.c
    for (const p of [`${ENDPOINT_PREFIX}${peerId}/`, SERVICE_PREFIX, `${REGISTRATION_PREFIX}${peerId}/`])
      this.unwatch.push(store.watch(p, () => this.schedule()))
    this.reconcile()
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const u of this.unwatch) u()
    clearTimeout(this.timer)
    for (const r of this.runners.values()) r.stop()
    this.runners.clear()
  }

  /** checks running now, by health key */
  get running(): string[] {
    return [...this.runners.keys()].sort()
  }

  /**
   * A pass 50 ms after the first change, and no sooner than PASS_GAP_MS after
   * the last: a burst of thousands of registrations costs a pass every half
   * second, not one per 50 ms each re-reading what the burst wrote so far.
   */
  private schedule(): void {
    if (this.timer || this.stopped) return
    const wait = Math.max(DEBOUNCE_MS, this.lastPass + PASS_GAP_MS - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.reconcile()
    }, wait)
    this.timer.unref()
  }

  private reconcile(): void {
    if (this.stopped) return
    this.lastPass = Date.now()
    const { store, peerId } = this.c
    const catalog = buildCatalog(localCatalogInput(store, peerId))
    const want = new Map<string, { spec: CheckSpec; target: CheckTarget; member: Member }>()
    for (const svc of catalog.services.values()) {
      for (const m of svc.members) {
        if (m.peer !== peerId) continue
        const rec = store.get(m.endpointKey)
        const ep = rec && endpointCodec.valueOf(rec)
        if (!ep) continue
        const [, , cid = '', ifname = ''] = m.endpointKey.split('/')
        for (const spec of m.checks) {
          const target: CheckTarget = { ipv4: m.ipv4, ports: m.ports }
          if (ep.netns) target.netns = ep.netns
          want.set(healthKey(peerId, cid, ifname, m.service, spec.name), { spec, target, member: m })
        }
      }
    }
    for (const [key, r] of this.runners) {
      const w = want.get(key)
      if (!w || JSON.stringify([w.spec, w.target]) !== r.fingerprint) {
        r.stop()
        this.runners.delete(key)
      }
    }
    for (const [key, w] of want) {
      if (this.runners.has(key)) continue
      const r = new CheckRunner(
        key,
        JSON.stringify([w.spec, w.target]),
        w.spec,
        w.target,
        w.member,
        (k, v) => this.write(k, v),
        this.metrics,
      )
      this.runners.set(key, r)
      r.start()
    }
    // results of checks that no longer exist would keep an endpoint out of DNS forever
    for (const rec of store.list(`${HEALTH_PREFIX}${peerId}/`)) {
      if (!want.has(rec.key)) void store.delete(rec.key).catch(() => {})
    }
  }

  private async write(key: string, v: HealthValue): Promise<void> {
    try {
      await this.c.store.put(key, healthCodec.encode(v))
      this.c.logger.info({ key, status: v.status, output: v.output }, 'health check changed')
    } catch (err) {
      this.c.logger.warn({ key, err: errorMessage(err) }, 'cannot write health result')
    }
  }
}
