// Measures the bytes this host's containers exchange with services and publishes a bounded summary
// as traffic/<peerId>, which the scheduler reads as the cluster's service-to-service matrix
// (README.md). Every sampleMs: one ctnetlink dump of the host namespace's conntrack table, the
// addresses attributed through the endpoint records, the account updated; published when a pair
// appeared, went or moved by a fifth, and at least every REFRESH_MS (the record's TTL is three of
// those, so a silent host's summary goes).
import { NAMESPACE_WIDE, type RuleProvider } from '../datapath/model.js'
import { parseIPv4 } from '../lib/addressing.js'
import { dumpConntrack } from '../lib/conntrack.js'
import { errorMessage } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import { PassLoop } from '../lib/pass-loop.js'
import type { Startable } from '../lib/startable.js'
import { endpointCodec, trafficCodec } from '../store/codecs.js'
import { ENDPOINT_PREFIX, type Store, TRAFFIC_PREFIX } from '../store/types.js'
import { type AddressOwner, type PairRate, TrafficAccount } from './account.js'
import { trafficMetrics } from './metrics.js'

export interface TrafficConfig {
  /** measure at all (conntrack accounting is switched on by the datapath while this is on); default true */
  enabled?: boolean
  /** between two dumps of the conntrack table; default 10 s */
  sampleMs?: number
  /** time constant of the rates: a pair that stops fades to 1/e in it; default 10 min */
  tauMs?: number
}

export interface TrafficComponents {
  store: Store
  peerId: string
  logger: Logger
  metrics: Metrics
  config: { name: string; traffic?: TrafficConfig }
}

const DEFAULT_SAMPLE_MS = 10_000
const DEFAULT_TAU_MS = 600_000
/** this host's summary: the record the sampler writes and the accounting switch stands for */
const trafficKey = (peerId: string) => `${TRAFFIC_PREFIX}${peerId}`
/** a summary is written again at least this often, so its TTL (three of these) holds while the host lives */
const REFRESH_MS = 300_000
/** a pair whose rate moved by more than this share since the last publish is worth a write */
const CHANGE_SHARE = 0.2

export class TrafficService implements Startable {
  private readonly account: TrafficAccount
  private readonly loop: PassLoop
  private readonly metrics: ReturnType<typeof trafficMetrics>
  private published: { at: number; pairs: PairRate[] } | undefined

  constructor(private readonly d: TrafficComponents) {
    this.account = new TrafficAccount(d.config.traffic?.tauMs ?? DEFAULT_TAU_MS)
    this.metrics = trafficMetrics(d.metrics)
    this.loop = new PassLoop({
      debounceMs: 0,
      intervalMs: d.config.traffic?.sampleMs ?? DEFAULT_SAMPLE_MS,
      index: () => d.store.index,
      pass: () => this.sample(),
      onError: (err) => {
        this.metrics.samples.inc({ result: 'failed' })
        d.logger.warn({ err: errorMessage(err) }, 'traffic not measured this time')
      },
    })
  }

  async start(): Promise<void> {
    await this.loop.start()
  }

  async stop(): Promise<void> {
    await this.loop.stop()
  }

  /** every endpoint address in the cluster with its service, and whether it is this host's */
  private owners(): Map<string, AddressOwner> {
    const out = new Map<string, AddressOwner>()
    for (const r of this.d.store.list(ENDPOINT_PREFIX)) {
      const e = endpointCodec.valueOf(r)
      if (e?.service) out.set(e.ipv4, { service: e.service, local: r.owner === this.d.peerId })
    }
    return out
  }

  private async sample(): Promise<void> {
    const owners = this.owners()
    // a connection is counted on the host of the side that opened it (account.ts pairOf): only
    // entries from this host's service endpoints are parsed
    const local = new Set<number>()
    for (const [address, o] of owners) {
      const n = o.local ? parseIPv4(address) : undefined
      if (n !== undefined) local.add(n)
    }
    const { entries, total } = await dumpConntrack((src) => local.has(src))
    const now = Date.now()
    const added = this.account.sample(entries, owners, now)
    this.metrics.samples.inc({ result: 'ok' })
    this.metrics.entries.set(total)
    this.metrics.bytes.inc([...added.values()].reduce((a, b) => a + b, 0))
    const pairs = this.account.summary()
    this.metrics.pairs.set(pairs.length)
    if (!this.worthWriting(pairs, now)) return
    await this.d.store.put(
      trafficKey(this.d.peerId),
      trafficCodec.encode({ host: this.d.config.name, at: now, pairs, tauMs: this.account.tauMs }),
      { ttlMs: 3 * REFRESH_MS },
    )
    this.published = { at: now, pairs }
  }

  private worthWriting(pairs: PairRate[], now: number): boolean {
    const last = this.published
    if (!last) return pairs.length > 0
    if (now - last.at >= REFRESH_MS || pairs.length !== last.pairs.length) return true
    const before = new Map(last.pairs.map((p) => [`${p.from} ${p.to}`, p.bytesPerSec]))
    return pairs.some((p) => {
      const b = before.get(`${p.from} ${p.to}`)
      return b === undefined || Math.abs(p.bytesPerSec - b) > CHANGE_SHARE * b
    })
  }
}

/**
 * The datapath's part (a rule provider: the datapath owns every kernel write): conntrack keeps byte
 * counters only with net.netfilter.nf_conntrack_acct on, and turns them on for connections made
 * after, so it is on from the first pass and put back if someone turns it off. No firewall rule.
 */
export function conntrackAccounting(peerId: string): RuleProvider {
  const sw = { kind: 'conntrack-acct' as const, dev: NAMESPACE_WIDE, on: true }
  return () => ({
    section: { name: 'traffic', rules: [] },
    switches: [sw],
    origins: { [`${sw.kind} ${sw.dev}`]: [trafficKey(peerId)] },
  })
}
