import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client'

/**
 * The metrics registry (Prometheus, through prom-client): one per agent, on
 * the ground floor so that every module registers its own metrics without
 * importing the agent. Each module declares its metrics in one place
 * (src/<module>/metrics.ts) and gets them from here by name; `GET /metrics`
 * serves the text format and `GET /v1/status` shows the same numbers.
 *
 * Names follow Prometheus' and CoreDNS/Cilium's conventions, checked when a
 * metric is declared: a `plexus_` prefix, counters end in `_total`, base
 * units only (`_seconds`, `_bytes`, never `_ms`), what varies goes in labels.
 */

export const METRIC_PREFIX = 'plexus_'

type Series = MetricValue<string> & { metricName?: string }
type Config<C> = Omit<C, 'registers' | 'collect'>
type Kind = 'counter' | 'gauge' | 'histogram'

/** Buckets for operations a person waits for (a CNI ADD, a datapath pass): 1 ms to 10 s. */
export const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Buckets for DNS answers, as CoreDNS' request duration: 0.25 ms up to 8 s. */
export const DNS_BUCKETS = [
  0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
  8.192,
]

/** Why a declared name breaks the conventions above, or undefined when it keeps them. */
export function nameProblem(kind: Kind, name: string): string | undefined {
  if (!name.startsWith(METRIC_PREFIX)) return `does not start with ${METRIC_PREFIX}`
  if (!/^[a-z][a-z0-9_]*$/.test(name)) return 'is not lower snake case'
  if (/_(ms|milliseconds|us|microseconds|minutes|hours|kb|kib|mb|mib)(_|$)/.test(name))
    return 'is not in base units (seconds, bytes)'
  if (kind === 'counter' && !name.endsWith('_total')) return 'is a counter without the _total suffix'
  if (kind !== 'counter' && name.endsWith('_total')) return `is a ${kind} with a counter's _total suffix`
  return undefined
}

/** One series' key as Prometheus writes it: `name{a="1",b="2"}` (labels sorted). */
export function seriesKey(name: string, labels: MetricValue<string>['labels']): string {
  const pairs = Object.entries(labels)
    .filter(([, v]) => v !== undefined && v !== '')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
  return pairs.length ? `${name}{${pairs.join(',')}}` : name
}

export class Metrics {
  readonly registry = new Registry()
  /** gauges read at scrape time: the sampler of the latest owner (one per agent) */
  private readonly samplers = new Map<string, () => void>()

  get contentType(): string {
    return this.registry.contentType
  }

  counter<L extends string>(cfg: Config<CounterConfiguration<L>>): Counter<L> {
    return this.declare('counter', cfg, () => new Counter({ ...cfg, registers: [this.registry] }))
  }

  gauge<L extends string>(cfg: Config<GaugeConfiguration<L>>): Gauge<L> {
    return this.declare('gauge', cfg, () => new Gauge({ ...cfg, registers: [this.registry] }))
  }

  /**
   * A gauge whose value is read from its owner when scraped (records in the
   * store, members by state), so no number is kept twice. `sample` sets the
   * gauge; label sets that vanished (a peer gone) are dropped first.
   */
  sampled<L extends string>(cfg: Config<GaugeConfiguration<L>>, sample: (g: Gauge<L>) => void): Gauge<L> {
    return this.withSampler(
      'gauge',
      cfg,
      (collect) => new Gauge({ ...cfg, registers: [this.registry], collect }),
      sample,
    )
  }

  /**
   * A counter kept by its owner in plain numbers (a hot path: the DNS
   * server's per-query counts), copied in when scraped. `sample` adds each
   * label set's total to the zeroed counter.
   */
  sampledCounter<L extends string>(
    cfg: Config<CounterConfiguration<L>>,
    sample: (c: Counter<L>) => void,
  ): Counter<L> {
    return this.withSampler(
      'counter',
      cfg,
      (collect) => new Counter({ ...cfg, registers: [this.registry], collect }),
      sample,
    )
  }

  histogram<L extends string>(cfg: Config<HistogramConfiguration<L>>): Histogram<L> {
    return this.declare('histogram', cfg, () => new Histogram({ ...cfg, registers: [this.registry] }))
  }

  /**
   * A histogram without labels for a hot path (every DNS answer): observe()
   * is a bucket scan and two additions, a tenth of prom-client's own, which
   * hashes labels on every call. Scraped like any other histogram.
   */
  hotHistogram(cfg: { name: string; help: string; buckets: readonly number[] }): HotHistogram {
    return this.declare('histogram', cfg, () => {
      const h = new HotHistogram(cfg.name, cfg.help, cfg.buckets)
      this.registry.registerMetric(h as never)
      return h
    })
  }

  /**
   * prom-client's process and Node.js metrics (CPU, memory, event-loop lag, GC, handles). The
   * event-loop lag is sampled every 100 ms, not prom-client's 10 ms: each sample is a timer that
   * wakes the loop, and 100 a second were half an idle agent's wakeups (strace: 2,000 epoll waits in
   * 10 s). A lag still shows whole: the sample after it is late by as much.
   */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 })
  }

  /** The Prometheus text format, what `GET /metrics` serves. */
  text(): Promise<string> {
    return this.registry.metrics()
  }

  /**
   * The operator's figures for `GET /v1/status`: every plexus_ counter and
   * gauge series by its Prometheus key, and each histogram's _count and _sum.
   */
  async figures(): Promise<Record<string, number>> {
    const out: Record<string, number> = {}
    for (const m of (await this.registry.getMetricsAsJSON()) as MetricObjectWithValues<Series>[]) {
      if (!m.name.startsWith(METRIC_PREFIX)) continue
      for (const v of m.values) {
        const name = v.metricName ?? m.name
        if (name.endsWith('_bucket')) continue
        out[seriesKey(name, v.labels)] = v.value
      }
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)))
  }

  /** One series' value (0 when it has not moved yet); labels must match exactly. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    return (await this.figures())[seriesKey(name, labels)] ?? 0
  }

  /** A metric whose collect() zeroes it and runs the sampler of its latest owner (one per agent). */
  private withSampler<M extends { reset(): void }>(
    kind: Kind,
    cfg: { name: string; help: string },
    make: (collect: () => void) => M,
    sample: (m: M) => void,
  ): M {
    const m: M = this.declare(kind, cfg, () =>
      make(() => {
        m.reset()
        this.samplers.get(cfg.name)?.()
      }),
    )
    this.samplers.set(cfg.name, () => sample(m))
    return m
  }

  private declare<M>(kind: Kind, cfg: { name: string; help: string }, make: () => M): M {
    const problem = nameProblem(kind, cfg.name)
    if (problem) throw new Error(`metric ${cfg.name} ${problem}`)
    const existing = this.registry.getSingleMetric(cfg.name)
    if (!existing) return make()
    const existingKind = (existing as unknown as { type?: string }).type
    if (existingKind !== undefined && existingKind !== kind)
      throw new Error(`metric ${cfg.name} is declared as a ${existingKind} and as a ${kind}`)
    // declared again by a second instance of its module on the same registry (tests, the simulator)
    return existing as M
  }
}

/** See Metrics.hotHistogram; speaks prom-client's metric interface (get, reset) to the registry. */
export class HotHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly bounds: Float64Array
  private counts: Float64Array
  private sum = 0

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b))
    this.counts = new Float64Array(this.bounds.length + 1)
  }

  observe(value: number): void {
    let i = 0
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++
    this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
  }

  reset(): void {
    this.counts = new Float64Array(this.bounds.length + 1)
    this.sum = 0
  }

  /** Cumulative buckets (le), then _sum and _count, as prom-client's Histogram reports them. */
  async get() {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = []
    let cumulative = 0
    this.counts.forEach((n, i) => {
      cumulative += n
      const le = i < this.bounds.length ? (this.bounds[i] as number) : '+Inf'
      values.push({ metricName: `${this.name}_bucket`, labels: { le }, value: cumulative })
    })
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum })
    values.push({ metricName: `${this.name}_count`, labels: {}, value: cumulative })
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}
