// The datapath service as the agent sees it (components.datapath): wires the
// reconciler to the store and the lease manager, publishes this host's VTEP
// MAC in its lease, and calls the rule providers the agent hands it
// (published ports) on every pass, so their firewall sections and switches
// are applied with the cluster rules in one batch, rebuilt from the store.

import { CLUSTER_NETWORK_NAME, subnetConfig } from '../ipam/bridge.js'
import { formatIPv4 } from '../ipam/cidr.js'
import { defaultPort, NETWORK_CONFIG_KEY, type NetworkConfig } from '../ipam/config.js'
import { gatewayOf, validLeases } from '../ipam/leases.js'
import { netLeaseKeys } from '../ipam/macvlan.js'
import type { BackendData, LeaseComponent } from '../ipam/manager.js'
import { networkLinks } from '../ipam/network.js'
import type { NamedNetwork } from '../ipam/networks.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import type { Explanation } from '../lib/explain.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import type { BridgeNetworkValue } from '../store/records.js'
import {
  ENDPOINT_PREFIX,
  LEASE_PREFIX,
  NET_LEASE_PREFIX,
  NETWORK_LINKS_PREFIX,
  NETWORKS_PREFIX,
  type ReadableStore,
  type StoreRecord,
  WIREGUARD_ROTATION_KEY,
} from '../store/types.js'
import { ContainerAttacher } from './attach.js'
import { backendFor } from './backend/index.js'
import { WireguardDriver } from './backend/wireguard/device.js'
import { HostKeys } from './backend/wireguard/keys.js'
import { KeyRotation } from './backend/wireguard/rotation.js'
import type { DatapathConfig } from './config.js'
import type { BridgeNetInput } from './desired.js'
import { createFirewall, type FirewallBackend } from './firewall/index.js'
import { checkSpec, type FirewallView, type Section } from './firewall/model.js'
import { networksSections } from './firewall/networks.js'
import { checkEndpoint, type SpoofEndpoint } from './firewall/spoof.js'
import { MacvlanShims } from './macvlan.js'
import { datapathMetrics, timedFirewall } from './metrics.js'
import { BRIDGE_NAME, networkBridgeName, type Provided, type RuleProvider } from './model.js'
import { Netlink } from './netlink.js'
import type { OriginSources } from './origins.js'
import {
  type BridgeLifetime,
  type DatapathStatus,
  type InputSource,
  type PassInput,
  Reconciler,
} from './reconciler.js'
import { type HostSockets, hostSockets } from './sockets.js'

export interface DatapathComponent {
  status(): DatapathStatus
  /** converge now; resolves when the pass is done */
  reconcile(): Promise<void>
  /** makes sure a bridge (plexus0 by default) exists (a CNI ADD may come before the first pass); PLX_DATAPATH_NOT_READY while there is no lease */
  ensureBridge(name?: string): Promise<void>
  /**
   * Resolves once a pass has applied the store as it was at `index` (a
   * caller that wrote a record waits until the kernel has it). Rejects with
   * PLX_FIREWALL_FAILED when that pass could not apply the firewall batch
   * (the kernel keeps the previous rules), PLX_DATAPATH_NOT_READY when no
   * pass applied it in time.
   */
  converged(index: number): Promise<void>
  /** which store records produced the kernel objects `subject` names (a route, neighbour, FDB entry, rule tag, veth) */
  explain(subject: string): Explanation[]
  /** Plexus' firewall rules as the kernel has them now (rule tags per hook, packet counts): read-only, for trace */
  firewallView(): Promise<FirewallView>
}

/** how long converged() waits for a pass: a light pass takes tens of ms, a firewall batch under load a few hundred */
const CONVERGE_TIMEOUT_MS = 10_000

export interface DatapathComponents {
  /** stateDir: the WireGuard key; runDir: the WireGuard device's socket, pid and log */
  config: { datapath: DatapathConfig; stateDir: string; runDir: string }
  logger: Logger
  metrics: Metrics
  peerId: string
  store: ReadableStore
  lease: LeaseComponent
  /** pure providers of firewall sections and switches from this host's endpoint records (published ports) */
  providers?: readonly RuleProvider[]
  /** the named networks this host serves (src/ipam): each bridge network gets its bridge, VTEP and routes */
  networks?: { list(): NamedNetwork[] }
}

type BridgeNet = NamedNetwork<BridgeNetworkValue>
const isBridge = (n: NamedNetwork): n is BridgeNet => n.network.driver === 'bridge'

export class DatapathService implements Startable, DatapathComponent {
  /** the host's socket table, for port admission (src/ports): only the datapath reads the kernel */
  readonly sockets: HostSockets = hostSockets
  /** the kernel side of CNI attachments (src/endpoints), on a netlink socket of its own as before */
  readonly attachments = new ContainerAttacher(Netlink.open(), (name) => this.ensureBridge(name))
  private readonly unwatch: (() => void)[] = []
  /** the backend data each lease manager was last handed (a network made anew has a new one) */
  private readonly published = new WeakMap<object, string>()
  private readonly reconciler: Reconciler
  /** the hosts' ways to their own macvlan containers, reconciled on their own loop (macvlan.ts) */
  private readonly shims: MacvlanShims
  private readonly wireguard: WireguardDriver
  /** this host's WireGuard keys, and their rotation (`plexctl network rotate-keys`) */
  private readonly wgKeys: HostKeys
  private readonly rotation: KeyRotation
  /** provider sections refused by checkSpec in the last pass (logged once each) */
  private refusedSections = new Set<string>()
  /** endpoint records left without anti-spoofing rules (logged once each) */
  private unguarded = new Set<string>()

  private constructor(
    private readonly c: DatapathComponents,
    private readonly nl: Netlink,
    private readonly firewall: FirewallBackend,
  ) {
    const metrics = datapathMetrics(c.metrics)
    this.wgKeys = new HostKeys(c.config.stateDir)
    this.wireguard = new WireguardDriver({
      keys: this.wgKeys,
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
      indexOf: (key) => c.store.modifyIndex(key),
      intervalMs: c.config.datapath.reconcileIntervalMs,
    })
    this.rotation = new KeyRotation({
      keys: this.wgKeys,
      store: c.store,
      settleMs: c.config.datapath.wireguardRotationSettleMs,
      logger: c.logger,
      active: () => this.usesWireguard(),
      publish: () => this.publishBackendData(),
      rotated: () => {
        metrics.wireguardKeyRotations.inc()
        this.reconciler.trigger()
      },
    })
    this.shims = new MacvlanShims(nl, {
      store: c.store,
      logger: c.logger,
      underlayInterface: () => c.lease.current()?.underlayInterface,
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
    // this host's endpoint records, read once a pass for the providers and the anti-spoofing rules
    const own = store.list(this.ownEndpoints)
    const { nets: bridgeNets, lifetimes } = this.bridgeNets(network)
    const provided = this.provided(cur.subnet, own)
    const between = this.networksSections(network, bridgeNets).filter((x) => x.rules.length)
    return {
      network,
      peerId,
      self,
      leases,
      underlay: { ifname: cur.underlayInterface, address: cur.publicIp },
      bridgeUntil: [...withdrawTime(BRIDGE_NAME, lease.status()), ...lifetimes],
      ...provided,
      ...(bridgeNets.length ? { bridgeNets } : {}),
      extraSections: [...between, ...provided.extraSections],
      endpoints: this.endpoints(own),
      ...this.wgKeys.identity(),
    }
  }

  /**
   * The bridge networks as this pass programs them: each with its valid leases and ours among them, and
   * the withdrawal times of the ones we hold (their bridge addresses' kernel lifetimes, as the cluster's).
   */
  private bridgeNets(cluster: NetworkConfig): { nets: BridgeNetInput[]; lifetimes: BridgeLifetime[] } {
    const all = this.c.store.list(NET_LEASE_PREFIX)
    const lifetimes: BridgeLifetime[] = []
    const nets = (this.c.networks?.list() ?? []).filter(isBridge).map((n) => {
      const network = deviceConfig(n.network, cluster)
      const leases = validLeases(all, network, Date.now(), netLeaseKeys(n.network.name))
      const cur = n.lease.current()
      const self = leases.valid.find((l) => l.peerId === this.c.peerId && l.value.subnet === cur?.subnet)
      if (self) lifetimes.push(...withdrawTime(networkBridgeName(n.network.name), n.lease.status()))
      return { name: n.network.name, network, leases, ...(self ? { self } : {}) }
    })
    return { nets, lifetimes }
  }

  /** the rules between the overlay networks (firewall/networks.ts), from the networks and their links */
  private networksSections(cluster: NetworkConfig, nets: BridgeNetInput[]): Section[] {
    const vxlanNets = nets.filter((n) => n.network.Backend.Type === 'vxlan')
    const internal = new Map(
      (this.c.networks?.list() ?? []).filter(isBridge).map((n) => [n.network.name, n.network.internal]),
    )
    return networksSections({
      cluster: { name: CLUSTER_NETWORK_NAME, cidr: cluster.Network, internal: false },
      bridges: nets.map((n) => ({
        name: n.name,
        cidr: n.network.Network,
        vni: n.network.Backend.VNI,
        backend: n.network.Backend.Type === 'wireguard' ? 'wireguard' : 'vxlan',
        internal: internal.get(n.name) ?? false,
        ...(n.self ? { subnet: n.self.value.subnet } : {}),
      })),
      links: networkLinks(this.c.store),
      vxlanPort: devicePort('vxlan', cluster),
      ...(cluster.Backend.Type !== 'wireguard' && nets.some((n) => n.network.Backend.Type === 'wireguard')
        ? { wireguardPort: devicePort('wireguard', cluster) }
        : {}),
      ...(cluster.Backend.Type !== 'vxlan' && vxlanNets.length
        ? { vxlanMembers: vxlanNets.flatMap((n) => n.leases.valid.map((l) => l.value.publicIp)) }
        : {}),
    })
  }

  /**
   * The providers' sections and switches for this pass. A section that could
   * not be rendered safely is left out (its rules are not applied), logged
   * once and counted as a failed change, rather than failing the batch.
   */
  private provided(
    subnet: string,
    endpoints: StoreRecord[],
  ): Required<Pick<PassInput, 'extraSections' | 'switches'>> & { sources: OriginSources } {
    const extraSections: Provided['section'][] = []
    const switches: Provided['switches'] = []
    const sources: OriginSources = {
      endpoints: endpoints.flatMap((r) => {
        const veth = (r.value as { hostVeth?: unknown } | null)?.hostVeth
        return typeof veth === 'string' ? [{ key: r.key, hostVeth: veth }] : []
      }),
      provided: {},
    }
    const out = { extraSections, switches, sources }
    const refused = new Set<string>()
    for (const provide of this.c.providers ?? []) {
      const { section, switches: wanted, origins } = provide({ subnet, bridge: BRIDGE_NAME, endpoints })
      const problems =
        section.name === 'cluster'
          ? ['section "cluster" belongs to the datapath']
          : checkSpec({ sections: [section] })
      if (problems.length) {
        const text = `firewall section ${section.name} refused: ${problems.join('; ')}`
        refused.add(text)
        if (!this.refusedSections.has(text)) {
          datapathMetrics(this.c.metrics).changeErrors.inc()
          this.c.logger.error({ problems }, text)
        }
        continue
      }
      if (section.rules.length) extraSections.push(section)
      switches.push(...wanted)
      sources.provided[section.name] = origins
    }
    this.refusedSections = refused
    return out
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
  private endpoints(records: StoreRecord[]): SpoofEndpoint[] {
    const out: SpoofEndpoint[] = []
    const bad = new Set<string>()
    for (const r of records) {
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

  /** some overlay of this host runs over WireGuard: the cluster network, or a bridge network it serves */
  private usesWireguard(): boolean {
    return (
      this.c.lease.network()?.Backend.Type === 'wireguard' ||
      (this.c.networks?.list() ?? []).some((n) => isBridge(n) && n.network.backend === 'wireguard')
    )
  }

  /**
   * What this host's lease of `network` carries so the others can program it: its VTEP MAC (vxlan) or its
   * public key, next key while it rotates, and endpoint (wireguard); empty while not known yet (no key
   * loaded, no underlay address).
   */
  private async backendData(network: NetworkConfig): Promise<BackendData> {
    if (network.Backend.Type === 'wireguard') await this.wgKeys.load()
    const publicIp = this.c.lease.current()?.publicIp
    const { vtepMac, publicKey, nextPublicKey, endpoint } = backendFor(network.Backend.Type).leaseData(
      network,
      this.c.peerId,
      { ...(publicIp ? { publicIp } : {}), ...this.wgKeys.identity() },
    )
    return {
      ...(vtepMac ? { vtepMac } : {}),
      ...(publicKey && endpoint ? { publicKey, endpoint, ...(nextPublicKey ? { nextPublicKey } : {}) } : {}),
    }
  }

  /** Hands `lease` the backend data of `network` when it changed since it was last handed it. */
  private async publishTo(lease: LeaseComponent, network: NetworkConfig): Promise<void> {
    const data = await this.backendData(network)
    const key = JSON.stringify(data)
    if (Object.keys(data).length && key !== this.published.get(lease)) {
      this.published.set(lease, key)
      await lease.setBackendData(data)
    }
  }

  /** the cluster lease and each bridge network's carry our backend data, each for its own backend */
  private async publishBackendData(): Promise<void> {
    const network = this.c.lease.network()
    if (!network) return
    await this.publishTo(this.c.lease, network)
    for (const n of (this.c.networks?.list() ?? []).filter(isBridge))
      await this.publishTo(n.lease, deviceConfig(n.network, network))
  }

  private onChange(skippable: boolean): void {
    this.publishBackendData().catch((err: unknown) => {
      this.c.logger.error({ err }, `datapath: cannot publish backend data: ${errorMessage(err)}`)
    })
    // also a retry of a rotation step that failed (the check is a comparison when none is due)
    void this.rotation.check()
    this.reconciler.trigger(undefined, false, skippable)
  }

  private readonly changed = () => this.onChange(false)
  /** a lease record (any host's): it reaches the kernel only through the desired state */
  private readonly leaseChanged = () => this.onChange(true)

  async start(): Promise<void> {
    await this.publishBackendData()
    this.unwatch.push(
      this.c.store.watch(LEASE_PREFIX, this.leaseChanged),
      this.c.store.watch(NET_LEASE_PREFIX, this.leaseChanged),
      this.c.store.watch(NETWORKS_PREFIX, this.changed),
      this.c.store.watch(NETWORK_LINKS_PREFIX, this.changed),
      this.c.store.watch(NETWORK_CONFIG_KEY, this.changed),
      this.c.store.watch(this.ownEndpoints, this.changed),
      this.c.store.watch(WIREGUARD_ROTATION_KEY, this.changed),
    )
    for (const ev of ['acquired', 'changed', 'lost'] as const) {
      this.c.lease.on(ev, this.changed)
      this.unwatch.push(() => this.c.lease.off(ev, this.changed))
    }
    await this.reconciler.start()
    await this.shims.start()
    await this.rotation.check()
  }

  async stop(): Promise<void> {
    for (const u of this.unwatch.splice(0)) u()
    this.rotation.stop()
    await this.shims.stop()
    await this.reconciler.stop()
    this.wireguard.close()
    // Devices, routes and rules stay: traffic keeps flowing across an agent restart. `plexusd --cleanup` removes them.
    this.nl.close()
    this.attachments.close()
  }

  status(): DatapathStatus {
    return this.reconciler.status()
  }

  reconcile(): Promise<void> {
    return this.reconciler.reconcile()
  }

  async ensureBridge(name = BRIDGE_NAME): Promise<void> {
    if (await this.nl.getLink(name)) return
    await this.reconciler.reconcile()
    if (await this.nl.getLink(name)) return
    const st = this.status()
    throw new PlexusError(
      'PLX_DATAPATH_NOT_READY',
      `bridge ${name} is not there yet: ${st.reason ?? st.state}`,
    )
  }

  explain(subject: string): Explanation[] {
    return this.reconciler.explain(subject)
  }

  firewallView(): Promise<FirewallView> {
    return this.firewall.read()
  }

  async converged(index: number): Promise<void> {
    try {
      await this.reconciler.converged(index, CONVERGE_TIMEOUT_MS)
    } catch (err) {
      const st = this.status()
      throw new PlexusError(
        'PLX_DATAPATH_NOT_READY',
        `the datapath has not applied the store (${errorMessage(err)}): ${st.reason ?? st.state}`,
      )
    }
    const failed = this.status().lastPass?.failed.find((f) => f.change === 'firewall-apply')
    if (failed) throw new PlexusError('PLX_FIREWALL_FAILED', `firewall rules not applied: ${failed.error}`)
  }
}

/**
 * The UDP port of this host's `type` device, which every overlay of that type shares: the cluster
 * network's port when the cluster uses that backend too, else the backend's default.
 */
function devicePort(type: 'vxlan' | 'wireguard', cluster: NetworkConfig): number {
  return cluster.Backend.Type === type ? cluster.Backend.Port : defaultPort(type)
}

/** a bridge network's lease config, with the port of the device its backend shares */
function deviceConfig(net: BridgeNetworkValue, cluster: NetworkConfig): NetworkConfig {
  const config = subnetConfig(net)
  return { ...config, Backend: { ...config.Backend, Port: devicePort(net.backend, cluster) } }
}

/** A bridge's lease's withdrawal time, when its lease manager states one (acquired or fenced). */
function withdrawTime(bridge: string, st: { withdrawAt?: string }): BridgeLifetime[] {
  const t = st.withdrawAt ? Date.parse(st.withdrawAt) : Number.NaN
  return Number.isFinite(t) ? [{ bridge, until: t }] : []
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
