// The datapath service as the agent sees it (components.datapath): wires the
// reconciler to the store and the lease manager, publishes this host's VTEP
// MAC in its lease, and lets other modules (published ports, issue 7) add
// firewall sections that are applied with the cluster rules in one batch.

import { formatIPv4 } from '../ipam/cidr.js'
import { NETWORK_CONFIG_KEY } from '../ipam/config.js'
import { gatewayOf, validLeases } from '../ipam/leases.js'
import type { LeaseComponent } from '../ipam/manager.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { ENDPOINT_PREFIX, LEASE_PREFIX, type ReadableStore, type StoreRecord } from '../store/types.js'
import { backendFor } from './backend/index.js'
import { WireguardDriver } from './backend/wireguard/device.js'
import type { DatapathConfig } from './config.js'
import { createFirewall, type FirewallBackend } from './firewall/index.js'
import { checkSpec, type Section } from './firewall/model.js'
import { checkEndpoint, type SpoofEndpoint } from './firewall/spoof.js'
import { datapathMetrics, timedFirewall } from './metrics.js'
import { BRIDGE_NAME } from './model.js'
import { Netlink } from './netlink.js'
import { type DatapathStatus, type InputSource, Reconciler } from './reconciler.js'

export interface DatapathComponent {
  status(): DatapathStatus
  /** converge now; resolves when the pass is done */
  reconcile(): Promise<void>
  /** makes sure plexus0 exists (a CNI ADD may come before the first pass); PLX_DATAPATH_NOT_READY while there is no lease */
  ensureBridge(): Promise<void>
  /**
   * Sets (or, with no rules, removes) one firewall section next to the
   * cluster's own; it is applied in a light pass, atomically with the rest.
   * Refused (PLX_FIREWALL_INVALID) when a rule cannot be rendered safely.
   */
  setFirewallSection(section: Section): Promise<void>
}

export interface DatapathComponents {
  /** stateDir: the WireGuard key; runDir: the WireGuard device's socket, pid and log */
  config: { datapath: DatapathConfig; stateDir: string; runDir: string }
  logger: Logger
  metrics: Metrics
  peerId: string
  store: ReadableStore
  lease: LeaseComponent
}

export class DatapathService implements Startable, DatapathComponent {
  private readonly sections = new Map<string, Section>()
  private readonly unwatch: (() => void)[] = []
  private published?: string
  private readonly reconciler: Reconciler
  private readonly wireguard: WireguardDriver
  /** endpoint records left without anti-spoofing rules (logged once each) */
  private unguarded = new Set<string>()

  private constructor(
    private readonly c: DatapathComponents,
    private readonly nl: Netlink,
    firewall: FirewallBackend,
  ) {
    const metrics = datapathMetrics(c.metrics)
    this.wireguard = new WireguardDriver({
      stateDir: c.config.stateDir,
      runDir: c.config.runDir,
      logger: c.logger,
      onExit: () => this.reconciler.trigger(),
      onRestart: () => metrics.wireguardRestarts.inc(),
    })
    this.reconciler = new Reconciler({
      wireguard: this.wireguard,
      nl,
      firewall: timedFirewall(firewall, metrics),
      source: this.inputs,
      logger: c.logger,
      metrics,
      index: () => c.store.index,
      intervalMs: c.config.datapath.reconcileIntervalMs,
    })
  }

  /** picks the firewall backend (once) and opens the netlink socket */
  static async create(c: DatapathComponents): Promise<DatapathService> {
    const firewall = await createFirewall(c.config.datapath.firewall)
    c.logger.info(
      { firewall: firewall.name, variant: firewall.variant },
      `datapath: firewall ${firewall.name}${firewall.variant ? ` (${firewall.variant})` : ''}`,
    )
    return new DatapathService(c, Netlink.open(), firewall)
  }

  private readonly inputs: InputSource = () => {
    const { lease, store, peerId } = this.c
    const network = lease.network()
    if (!network) return { waiting: 'no cluster network config yet' }
    const cur = lease.current()
    if (!cur) {
      const st = lease.status()
      const gone = lease.withdrawn()
      return {
        waiting: `no subnet lease (${st.state}${st.reason ? `: ${st.reason}` : ''})`,
        ...(gone ? { withdraw: { address: formatIPv4(gatewayOf(gone)), prefixLen: gone.prefix } } : {}),
      }
    }
    const leases = validLeases(store.list(LEASE_PREFIX), network)
    const self = leases.valid.find((l) => l.peerId === peerId)
    if (!self || self.value.subnet !== cur.subnet)
      return { waiting: `own lease ${cur.subnet} is not valid in the store yet` }
    return {
      network,
      peerId,
      self,
      leases,
      underlay: { ifname: cur.underlayInterface, address: cur.publicIp },
      ...withdrawTime(lease.status()),
      extraSections: [...this.sections.values()],
      endpoints: this.endpoints(),
      ...(this.wireguard.publicKey ? { wgPublicKey: this.wireguard.publicKey } : {}),
    }
  }

  private get ownEndpoints(): string {
    return `${ENDPOINT_PREFIX}${this.c.peerId}/`
  }

  /**
   * This host's endpoint records as the anti-spoofing rules take them. They
   * are our own records, so one that cannot be rendered means a bug or a
   * damaged state file: it is left out (its container is not guarded), logged
   * once and counted (`datapath.spoof.unguarded`) rather than failing the batch.
   */
  private endpoints(): SpoofEndpoint[] {
    const out: SpoofEndpoint[] = []
    const bad = new Set<string>()
    for (const r of this.c.store.list(this.ownEndpoints)) {
      const { endpoint, problem } = spoofEndpointOf(r)
      if (endpoint) {
        out.push(endpoint)
        continue
      }
      bad.add(r.key)
      if (this.unguarded.has(r.key)) continue
      datapathMetrics(this.c.metrics).spoofUnguarded.inc()
      this.c.logger.warn({ key: r.key }, `no anti-spoofing rules for ${r.key}: ${problem}`)
    }
    this.unguarded = bad
    return out
  }

  /** the lease must carry our VTEP MAC (vxlan) or public key and endpoint (wireguard) before the others can program us */
  private async publishBackendData(): Promise<void> {
    const network = this.c.lease.network()
    if (!network) return
    if (network.Backend.Type === 'wireguard') await this.wireguard.keys()
    const publicIp = this.c.lease.current()?.publicIp
    const { vtepMac, publicKey, endpoint } = backendFor(network.Backend.Type).leaseData(
      network,
      this.c.peerId,
      {
        ...(publicIp ? { publicIp } : {}),
        ...(this.wireguard.publicKey ? { wgPublicKey: this.wireguard.publicKey } : {}),
      },
    )
    const data = {
      ...(vtepMac ? { vtepMac } : {}),
      ...(publicKey && endpoint ? { publicKey, endpoint } : {}),
    }
    const key = JSON.stringify(data)
    if (Object.keys(data).length && key !== this.published) {
      this.published = key
      await this.c.lease.setBackendData(data)
    }
  }

  private readonly changed = () => {
    this.publishBackendData().catch((err: unknown) => {
      this.c.logger.error({ err }, `datapath: cannot publish backend data: ${errorMessage(err)}`)
    })
    this.reconciler.trigger()
  }

  async start(): Promise<void> {
    await this.publishBackendData()
    this.unwatch.push(
      this.c.store.watch(LEASE_PREFIX, this.changed),
      this.c.store.watch(NETWORK_CONFIG_KEY, this.changed),
      this.c.store.watch(this.ownEndpoints, this.changed),
    )
    for (const ev of ['acquired', 'changed', 'lost'] as const) {
      this.c.lease.on(ev, this.changed)
      this.unwatch.push(() => this.c.lease.off(ev, this.changed))
    }
    await this.reconciler.start()
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch.splice(0)) u()
    await this.reconciler.stop()
    this.wireguard.close()
    // Devices, routes and rules stay: traffic keeps flowing across an agent restart. `plexusd --cleanup` removes them.
    this.nl.close()
  }

  status(): DatapathStatus {
    return this.reconciler.status()
  }

  reconcile(): Promise<void> {
    return this.reconciler.reconcile()
  }

  async ensureBridge(): Promise<void> {
    if (await this.nl.getLink(BRIDGE_NAME)) return
    await this.reconciler.reconcile()
    if (await this.nl.getLink(BRIDGE_NAME)) return
    const st = this.status()
    throw new PlexusError(
      'PLX_DATAPATH_NOT_READY',
      `bridge ${BRIDGE_NAME} is not there yet: ${st.reason ?? st.state}`,
    )
  }

  async setFirewallSection(section: Section): Promise<void> {
    if (section.name === 'cluster')
      throw new PlexusError('PLX_FIREWALL_INVALID', 'section "cluster" belongs to the datapath')
    const problems = checkSpec({ sections: [section] })
    if (problems.length)
      throw new PlexusError('PLX_FIREWALL_INVALID', `firewall section refused: ${problems.join('; ')}`, {
        problems,
      })
    const previous = this.sections.get(section.name)
    if (section.rules.length) this.sections.set(section.name, section)
    else this.sections.delete(section.name)
    // a light pass: the section goes in with one firewall batch and no read-back
    await this.reconciler.reconcile(false)
    const failed = this.status().lastPass?.failed.find((f) => f.change === 'firewall-apply')
    if (failed) {
      // the batch is atomic, so the kernel still holds the previous rules: keep the model in step with it
      if (previous) this.sections.set(section.name, previous)
      else this.sections.delete(section.name)
      throw new PlexusError(
        'PLX_FIREWALL_FAILED',
        `firewall section ${section.name} not applied: ${failed.error}`,
      )
    }
  }
}

/** The lease's withdrawal time, when the lease manager states one (acquired or fenced). */
function withdrawTime(st: { withdrawAt?: string }): { bridgeUntil?: number } {
  const t = st.withdrawAt ? Date.parse(st.withdrawAt) : Number.NaN
  return Number.isFinite(t) ? { bridgeUntil: t } : {}
}

function spoofEndpointOf(r: StoreRecord): { endpoint?: SpoofEndpoint; problem?: string } {
  const v = r.value
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { problem: 'the value is not an object' }
  const { hostVeth, mac, ipv4, ipv6 } = v
  if (typeof hostVeth !== 'string' || typeof mac !== 'string' || typeof ipv4 !== 'string')
    return { problem: 'hostVeth, mac or ipv4 missing' }
  if (ipv6 !== undefined && typeof ipv6 !== 'string') return { problem: 'ipv6 is not a string' }
  const endpoint = { hostVeth, mac, ipv4, ...(ipv6 === undefined ? {} : { ipv6 }) }
  const problem = checkEndpoint(endpoint)
  return problem ? { problem } : { endpoint }
}
