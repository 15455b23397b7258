// The attachment service behind the CNI plugin: ADD, DEL, CHECK, GC, STATUS
// on this host, plus the cluster-wide endpoint listing the CLI shows.
// Reads top to bottom like the reference bridge plugin: small ensure/undo
// helpers, then attach/detach/check/gc/status. Every kernel change goes
// through the datapath's attachments interface (src/datapath/attach.ts), which
// the agent hands in; addresses through src/ipam.
import { join } from 'node:path'
import type { Attachments, ContainerEndView, HostEndView } from '../datapath/attach.js'
import { BRIDGE_NAME, networkBridgeName } from '../datapath/model.js'
import { assertNotHostNetns, resolveNetns } from '../datapath/netns.js'
import { AddressAllocator, type AllocationResult } from '../ipam/addresses.js'
import type { CurrentLease, LeaseComponent } from '../ipam/manager.js'
import { errorMessage, isPlexusError, PlexusError } from '../lib/errors.js'
import { faultPoint } from '../lib/faults.js'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../lib/metrics.js'
import type { Startable } from '../lib/startable.js'
import { endpointCodec } from '../store/codecs.js'
import type { EndpointValue } from '../store/records.js'
import { ENDPOINT_PREFIX, type Store, type StoreRecord } from '../store/types.js'
import { EndpointJournal } from './journal.js'
import { type MacvlanComponents, MacvlanEndpoints } from './macvlan.js'
import { type EndpointsMetrics, endpointsMetrics } from './metrics.js'
import {
  type AttachmentFacts,
  type AttachmentKey,
  type AttachRequest,
  assertAddressing,
  buildEndpoint,
  buildResult,
  type CniResult,
  checkProblems,
  type DetachRequest,
  endpointKey,
  hostVethName,
  NETWORK_LABEL,
  type Observed,
  resolveRoutes,
  splitStaticIp,
} from './model.js'
import { readSpool, removeSpooled } from './spool.js'

export interface EndpointServiceComponents {
  config: { name: string; stateDir: string }
  logger: Logger
  metrics: Metrics
  store: Store
  peerId: string
  lease: Pick<LeaseComponent, 'current' | 'status'>
  /** the ipam allocator, when the agent already opened one; else this service opens <stateDir>/ipam */
  addresses?: AddressAllocator
  /**
   * The datapath: makes, observes and removes the veths (creating plexus0
   * when ADD comes before its first pass), and tells when a pass has applied
   * the record ADD wrote (anti-spoofing and published-port rules), so ADD
   * answers only once they are in the kernel.
   */
  datapath: { attachments: Attachments; converged(index: number): Promise<void> }
  /**
   * The DNS server (src/dns), when enabled: ADD waits until it answers on the
   * gateway address the result names as nameserver.
   */
  dns?: { listeningOn(address: string): Promise<boolean> }
  /** folders the plugin spools DELs into while the agent is down (next to each API socket) */
  spoolDirs?: string[]
  /**
   * the named networks this host serves (src/ipam): ADD on a macvlan one goes to macvlan.ts, on a bridge
   * one it is an overlay attachment as the cluster network's, on that network's bridge, lease and addresses
   */
  networks?: MacvlanComponents['networks']
  /** published ports (src/ports): checks them and picks hostPort 0; the datapath applies their rules from the record */
  ports?: { reserve(key: string, value: EndpointValue): Promise<NonNullable<EndpointValue['published']>> }
}

export interface CheckRequest extends AttachmentKey {
  netns: string
  netnsHandle?: AttachRequest['netnsHandle']
  prevResult?: { ips?: { address: string }[] }
}

export interface GcRequest {
  network: string
  validAttachments: AttachmentKey[]
}

export interface EndpointEntry {
  key: string
  owner: string
  local: boolean
  value: EndpointValue
}

/** Live kernel state of one local endpoint (plexctl inspect). */
export interface EndpointLive {
  hostVeth?: HostEndView
  container?: ContainerEndView
  dns?: CniResult['dns']
  problems: string[]
}

const attachmentId = (k: AttachmentKey) => `${k.containerId}/${k.ifname}`

/**
 * An overlay network a veth attachment goes on: the cluster network, or a
 * bridge network (src/ipam README *bridge networks*), which is the same thing
 * with its own lease, addresses and bridge.
 */
interface OverlayNet {
  /** absent: the cluster network */
  name?: string
  lease: Pick<LeaseComponent, 'current' | 'status'>
  allocator: AddressAllocator
  bridge: string
}

/** the bridge an attachment's host end is on */
const bridgeOf = (v: Pick<EndpointValue, 'network'>) =>
  v.network ? networkBridgeName(v.network) : BRIDGE_NAME

/** how long ADD waits for the DNS server to answer on a gateway address that just appeared */
const DNS_READY_TIMEOUT_MS = 5_000
const DNS_READY_POLL_MS = 10

/**
 * A repeated ADD is the runtime retrying the same attachment. One that asks
 * for something else (another namespace, address, MAC, gateway or routes) is
 * a bug or a second container with a reused id: refused, never silently moved or kept.
 */
function refuseConflict(existing: EndpointValue, req: AttachRequest, lease: CurrentLease): void {
  const differs: string[] = []
  if (existing.network !== req.namedNetwork)
    differs.push(`network ${existing.network ?? 'plexus'}, not ${req.namedNetwork ?? 'plexus'}`)
  if (existing.netns !== req.netns) differs.push(`namespace ${existing.netns}, not ${req.netns}`)
  if (req.ip && splitStaticIp(req.ip, lease.cidr.prefix) !== existing.ipv4)
    differs.push(`address ${existing.ipv4}, not ${req.ip}`)
  if (req.mac && req.mac !== existing.mac) differs.push(`MAC ${existing.mac}, not ${req.mac}`)
  const gateway = existing.gateway ?? lease.gateway
  if (req.gateway && req.gateway !== gateway) differs.push(`gateway ${gateway}, not ${req.gateway}`)
  const show = (rs: EndpointValue['routes']) => rs?.map((r) => `${r.dst} via ${r.gw}`).join(', ') || 'none'
  const routes = resolveRoutes(req.routes, req.gateway ?? gateway)
  if (routes && show(routes) !== show(existing.routes))
    differs.push(`routes ${show(existing.routes)}, not ${show(routes)}`)
  if (differs.length) {
    throw new PlexusError(
      'PLX_ENDPOINTS_CONFLICT',
      `${attachmentId(req)} is already attached with ${differs.join(', ')}; DEL it before attaching it differently`,
    )
  }
}

export class EndpointService implements Startable {
  private readonly log: Logger
  private readonly metrics: EndpointsMetrics
  private allocator?: AddressAllocator
  private journal?: EndpointJournal
  private readonly macvlan?: MacvlanEndpoints
  /** one operation at a time per attachment: a DEL never interleaves with its ADD */
  private readonly locks = new Map<string, Promise<unknown>>()

  constructor(private readonly c: EndpointServiceComponents) {
    this.log = c.logger.child({ component: 'endpoints' })
    this.metrics = endpointsMetrics(c.metrics)
    if (c.networks)
      this.macvlan = new MacvlanEndpoints({
        networks: c.networks,
        links: c.datapath.attachments,
        logger: this.log,
        store: c.store,
        peerId: c.peerId,
        host: c.config.name,
      })
  }

  async start(): Promise<void> {
    this.allocator =
      this.c.addresses ??
      (await AddressAllocator.open(join(this.c.config.stateDir, 'ipam'), () => this.c.lease.current()?.cidr))
    this.journal = await EndpointJournal.open(join(this.c.config.stateDir, 'endpoints.json'))
    await this.recover()
    await this.drainSpool()
  }

  async stop(): Promise<void> {
    // Let running operations finish so none stops half-way.
    await Promise.allSettled([...this.locks.values()])
  }

  // ---- small helpers ----

  private ready(): { allocator: AddressAllocator; journal: EndpointJournal } {
    if (!this.allocator || !this.journal)
      throw new PlexusError('PLX_ENDPOINTS_NOT_READY', 'the endpoint service is not started yet')
    return { allocator: this.allocator, journal: this.journal }
  }

  /** the kernel side, through the datapath */
  private get links(): Attachments {
    return this.c.datapath.attachments
  }

  private exclusive<T>(k: AttachmentKey, fn: () => Promise<T>): Promise<T> {
    const id = attachmentId(k)
    const run = (this.locks.get(id) ?? Promise.resolve()).then(fn, fn)
    const tail = run.catch(() => undefined)
    this.locks.set(id, tail)
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id)
    })
    return run
  }

  /** the cluster network, or bridge network `name` (undefined when this host serves no such bridge network) */
  private overlay(name: string | undefined): OverlayNet | undefined {
    if (name === undefined)
      return { lease: this.c.lease, allocator: this.ready().allocator, bridge: BRIDGE_NAME }
    const n = this.c.networks?.get(name)
    if (n?.network.driver !== 'bridge') return undefined
    return { name, lease: n.lease, allocator: n.addresses, bridge: networkBridgeName(name) }
  }

  private requireLease(net: OverlayNet): CurrentLease {
    const lease = net.lease.current()
    if (!lease) {
      const s = net.lease.status()
      throw new PlexusError(
        'PLX_ENDPOINTS_NO_LEASE',
        `this host holds no subnet ${net.name ? `of network ${net.name} ` : ''}lease yet (${s.state}${s.reason ? `: ${s.reason}` : ''})`,
      )
    }
    return lease
  }

  /** This host's attachment under key: the journal is the truth, the store record its published copy. */
  private localRecord(key: string): EndpointValue | undefined {
    return this.journal?.get(key)
  }

  private localRecords(): EndpointValue[] {
    return (this.journal?.list() ?? []).map(([, v]) => v)
  }

  private facts(v: EndpointValue, lease: CurrentLease, hostMac?: string): AttachmentFacts {
    return {
      containerId: v.containerId,
      ifname: v.ifname,
      netns: v.netns,
      address: v.ipv4,
      prefixLength: lease.cidr.prefix,
      gateway: v.gateway ?? lease.gateway,
      bridge: lease.gateway,
      ...(v.routes ? { routes: v.routes } : {}),
      mtu: lease.mtu,
      mac: v.mac,
      hostVeth: v.hostVeth,
      ...(hostMac ? { hostMac } : {}),
    }
  }

  /** Makes the veth pair (container end directly in the namespace) and puts the host end on the bridge. */
  private async createHostVeth(
    req: AttachRequest,
    nsPath: string,
    hostVeth: string,
    mtu: number,
    bridge: string,
  ): Promise<{ hostMac?: string }> {
    try {
      return await this.links.createVeth({
        hostVeth,
        nsPath,
        ifname: req.ifname,
        mtu,
        bridge,
        ...(req.mac ? { mac: req.mac } : {}),
      })
    } catch (err) {
      if (isPlexusError(err, 'PLX_NETLINK_EXISTS')) {
        throw new PlexusError(
          'PLX_ENDPOINTS_IFNAME_TAKEN',
          `interface ${req.ifname} already exists in ${req.netns}`,
        )
      }
      throw err
    }
  }

  /** Gives the container end its address, brings it up and routes everything via its gateway, then its extra routes. */
  private async configureContainer(
    req: AttachRequest,
    nsPath: string,
    a: AllocationResult,
    gateway: string,
    routes: AttachmentFacts['routes'],
  ): Promise<string> {
    const mac = await this.links.configure({
      nsPath,
      ifname: req.ifname,
      address: a.address,
      prefixLength: a.prefixLength,
      gateway,
      ...(routes ? { routes: routes.map((r) => ({ dst: r.dst, gateway: r.gw })) } : {}),
    })
    if (!mac) throw new PlexusError('PLX_ENDPOINTS_INTERNAL', `interface ${req.ifname} has no MAC address`)
    return mac
  }

  /**
   * ADD answers only once what its result promises works. The routes are made
   * by then; the DNS server named in it may not be: on a fresh host the
   * gateway address appears on the bridge with the first ADD, and the server
   * binds it on its next try. Asking it to try now makes the first
   * container's first query succeed.
   */
  private async promised(facts: AttachmentFacts, req: AttachRequest): Promise<void> {
    const dns = this.c.dns
    if (!dns || (req.dns?.nameservers && !req.dns.nameservers.includes(facts.bridge))) return
    const deadline = Date.now() + DNS_READY_TIMEOUT_MS
    while (!(await dns.listeningOn(facts.bridge))) {
      if (Date.now() > deadline) {
        throw new PlexusError(
          'PLX_ENDPOINTS_DNS_NOT_READY',
          `the DNS server does not listen on ${facts.bridge}, the nameserver of the result, yet`,
        )
      }
      await new Promise((r) => setTimeout(r, DNS_READY_POLL_MS))
    }
  }

  // ---- ADD ----

  /**
   * Attaches one container interface. Everything acquired is pushed on an
   * undo stack that runs unless the record is written, so a failure at any
   * step leaves nothing behind. A repeated ADD returns the first result.
   */
  attach(req: AttachRequest): Promise<CniResult> {
    const { namedNetwork } = req
    if (namedNetwork !== undefined && this.c.networks?.get(namedNetwork)?.network.driver !== 'bridge')
      return this.exclusive(req, async () => {
        this.ready()
        if (!this.macvlan)
          throw new PlexusError(
            'PLX_ENDPOINTS_NO_NETWORK',
            `this agent serves no named network (${namedNetwork})`,
          )
        const res = await this.macvlan.attach({ ...req, namedNetwork })
        this.metrics.events.inc({ event: 'attached' })
        return res
      })
    return this.exclusive(req, () => this.attachOverlay(req))
  }

  private async attachOverlay(request: AttachRequest): Promise<CniResult> {
    const { journal } = this.ready()
    const net = this.overlay(request.namedNetwork)
    if (!net)
      throw new PlexusError(
        'PLX_ENDPOINTS_NO_NETWORK',
        `network ${request.namedNetwork} is gone from this host`,
      )
    const { allocator } = net
    const lease = this.requireLease(net)
    const req = net.name ? this.onBridgeNet(request, lease) : request
    const st = net.lease.status()
    if (st.state === 'fenced')
      // a fenced holder may lose the subnet before the container would be of any use (src/ipam/README.md)
      throw new PlexusError('PLX_ENDPOINTS_FENCED', `lease ${lease.subnet} is fenced: ${st.reason}`)
    assertAddressing(req, lease.cidr)
    const nsPath = resolveNetns(req.netns, req.netnsHandle)
    assertNotHostNetns(nsPath, req.netns)
    const key = endpointKey(this.c.peerId, req)

    const existing = this.localRecord(key)
    if (existing) {
      refuseConflict(existing, req, lease)
      if (allocator.get(req)?.address === existing.ipv4) {
        const observed = await this.observe(existing, nsPath)
        const facts = this.facts(existing, lease, observed.hostVeth?.mac)
        if (checkProblems(facts, observed, undefined).length === 0) {
          await this.promised(facts, req)
          return buildResult(facts, req.dns)
        }
      }
      // Damaged: rebuild it with the same address (the allocation stays;
      // allocate() below returns it).
      await this.links.deleteHostVeth(existing.hostVeth)
      await this.c.store.delete(key)
      await journal.delete(key)
    }

    const undo: (() => Promise<unknown>)[] = []
    try {
      const address = req.ip ? splitStaticIp(req.ip, lease.cidr.prefix) : undefined
      const hostVeth = hostVethName(req)
      // The address and the veth do not depend on each other: get both at once.
      const [allocated, made] = await Promise.allSettled([
        allocator.allocate({ containerId: req.containerId, ifname: req.ifname, address }),
        this.createHostVeth(req, nsPath, hostVeth, lease.mtu, net.bridge),
      ])
      // Also when reused: without a record the allocation belongs to nobody.
      if (allocated.status === 'fulfilled') undo.push(() => allocator.release(req))
      // Whatever got made of the veth goes; the name is ours by construction.
      undo.push(() => this.links.deleteHostVeth(hostVeth))
      if (allocated.status === 'rejected') throw allocated.reason
      if (made.status === 'rejected') throw made.reason
      await faultPoint('add.allocated')
      const alloc = allocated.value
      const host = made.value
      // a free address the container asked to route through may have just become its own
      if (!address) assertAddressing({ gateway: req.gateway, routes: req.routes }, lease.cidr, alloc.address)
      const gateway = req.gateway ?? alloc.gateway
      const routes = resolveRoutes(req.routes, gateway)
      const mac = await this.configureContainer(req, nsPath, alloc, gateway, routes)
      await faultPoint('add.configured')

      const facts: AttachmentFacts = {
        containerId: req.containerId,
        ifname: req.ifname,
        netns: req.netns,
        address: alloc.address,
        prefixLength: alloc.prefixLength,
        gateway,
        bridge: alloc.gateway,
        ...(routes ? { routes } : {}),
        mtu: lease.mtu,
        mac,
        hostVeth,
        ...host,
      }
      const value = buildEndpoint(req, facts, this.c.config.name, new Date())
      if (value.published && this.c.ports) value.published = await this.c.ports.reserve(key, value)
      // On disk before the answer: a restarted agent restores what it answered (recover()).
      const written = await Promise.allSettled([
        faultPoint('add.journal').then(() => journal.set(key, value)),
        faultPoint('add.store').then(() => this.c.store.put(key, endpointCodec.encode(value))),
      ])
      undo.push(
        () => journal.delete(key),
        async () => this.c.store.get(key) && (await this.c.store.delete(key)),
      )
      const failed = written.find((w) => w.status === 'rejected')
      if (failed) throw failed.reason
      await Promise.all([this.c.datapath?.converged(this.c.store.index), this.promised(facts, req)])
      undo.length = 0
      await faultPoint('add.written')
      this.metrics.events.inc({ event: 'attached' })
      return buildResult(facts, req.dns)
    } finally {
      for (const u of undo.reverse()) {
        try {
          await u()
        } catch (err) {
          this.log.warn({ err, attachment: attachmentId(req) }, 'ADD rollback step failed')
        }
      }
    }
  }

  /**
   * A bridge network's attachment also routes the whole network through its
   * gateway: a container on several networks has its default route on one
   * interface only, and reaches the other networks' other hosts by these.
   */
  private onBridgeNet(req: AttachRequest, lease: CurrentLease): AttachRequest {
    const network = lease.network.Network
    const routes = req.routes?.some((r) => r.dst === network)
      ? req.routes
      : [...(req.routes ?? []), { dst: network }]
    return { ...req, routes }
  }

  // ---- DEL ----

  private async teardown(k: AttachmentKey, record: EndpointValue | undefined): Promise<void> {
    const { journal } = this.ready()
    const key = endpointKey(this.c.peerId, k)
    // Deleting the host end removes the container end with it, wherever that namespace is.
    // The steps are independent, and recover() completes any subset a crash leaves.
    // A removed bridge network took its allocations with it (src/ipam networks.ts).
    await Promise.all([
      this.links.deleteHostVeth(record?.hostVeth ?? hostVethName(k)),
      this.overlay(record?.network)?.allocator.release(k),
      this.c.store.get(key) ? this.c.store.delete(key) : undefined,
      journal.delete(key),
    ])
  }

  /** Idempotent: a second DEL, a vanished namespace or an empty CNI_NETNS all succeed. */
  detach(req: DetachRequest): Promise<void> {
    return this.exclusive(req, async () => {
      const named = this.macvlan?.owner(req)
      if (named) {
        await this.macvlan?.detach(named, req)
        this.metrics.events.inc({ event: 'detached' })
        return
      }
      const record = this.localRecord(endpointKey(this.c.peerId, req))
      await this.teardown(req, record)
      if (record) this.metrics.events.inc({ event: 'detached' })
    })
  }

  // ---- CHECK ----

  private observe(v: EndpointValue, netns: string): Promise<Observed> {
    return this.links.observe(v.hostVeth, netns, v.ifname, bridgeOf(v))
  }

  /** CHECK: compares the kernel with the attachment; the error lists every difference. */
  check(req: CheckRequest): Promise<void> {
    return this.exclusive(req, async () => {
      this.ready()
      const named = this.macvlan?.owner(req)
      if (named)
        return this.macvlan?.check(
          named,
          req,
          req.prevResult?.ips?.map((i) => i.address),
        )
      const nsPath = resolveNetns(req.netns, req.netnsHandle)
      const record = this.localRecord(endpointKey(this.c.peerId, req))
      const net = record && this.overlay(record.network)
      if (!record || !net) {
        throw new PlexusError('PLX_ENDPOINTS_UNKNOWN', `no attachment ${attachmentId(req)} on this host`)
      }
      const lease = this.requireLease(net)
      const observed = await this.observe(record, nsPath)
      const prevIps = req.prevResult?.ips?.map((i) => i.address)
      const problems = checkProblems(this.facts(record, lease), observed, prevIps)
      if (problems.length) {
        throw new PlexusError(
          'PLX_ENDPOINTS_CHECK_FAILED',
          `CHECK ${attachmentId(req)}: ${problems.join('; ')}`,
          {
            problems,
          },
        )
      }
    })
  }

  // ---- GC ----

  /**
   * Releases every attachment of `network` the runtime no longer knows, and
   * every allocation with no attachment at all. Attachments of other
   * networks and operations still running are left alone.
   */
  async gc(req: GcRequest): Promise<{ released: AttachmentKey[] }> {
    const { allocator } = this.ready()
    const valid = new Set(req.validAttachments.map(attachmentId))
    const records = this.localRecords()
    const keep: AttachmentKey[] = [
      ...req.validAttachments,
      ...records.filter((r) => (r.labels?.[NETWORK_LABEL] ?? req.network) !== req.network),
      ...[...this.locks.keys()].map((id) => {
        const i = id.lastIndexOf('/')
        return { containerId: id.slice(0, i), ifname: id.slice(i + 1) }
      }),
    ]
    const released: AttachmentKey[] = []
    for (const r of records) {
      if ((r.labels?.[NETWORK_LABEL] ?? req.network) !== req.network || valid.has(attachmentId(r))) continue
      await this.detach(r)
      released.push({ containerId: r.containerId, ifname: r.ifname })
    }
    for (const a of await allocator.gc(keep)) {
      await this.links.deleteHostVeth(hostVethName(a))
      released.push({ containerId: a.containerId, ifname: a.ifname })
    }
    if (released.length) {
      this.metrics.events.inc({ event: 'gc_released' }, released.length)
      this.log.info({ released: released.map(attachmentId) }, 'GC released attachments')
    }
    return { released }
  }

  // ---- STATUS ----

  /** STATUS: can this host take containers? (lease held; bridge present once containers exist) */
  async status(): Promise<{ subnet: string; gateway: string; mtu: number; endpoints: number }> {
    this.ready()
    const lease = this.c.lease.current()
    if (!lease) {
      const s = this.c.lease.status()
      throw new PlexusError(
        'PLX_ENDPOINTS_UNAVAILABLE',
        `this host holds no subnet lease (${s.state}${s.reason ? `: ${s.reason}` : ''})`,
      )
    }
    const endpoints = this.localRecords().length
    if (endpoints > 0 && !(await this.links.bridgePresent())) {
      throw new PlexusError(
        'PLX_ENDPOINTS_DEGRADED',
        `bridge ${BRIDGE_NAME} is missing: the ${endpoints} attached containers have no connectivity`,
      )
    }
    return { subnet: lease.subnet, gateway: lease.gateway, mtu: lease.mtu, endpoints }
  }

  // ---- start-up recovery ----

  /**
   * Makes kernel, allocations, store and journal agree again after the agent
   * died, before the API takes requests:
   * - an allocation with no journal entry is an ADD that never answered: the
   *   runtime saw error 11, so its veth and address go;
   * - a journal entry is an attachment ADD answered for: its store record is
   *   put back if the store's snapshot missed it; without its allocation (a
   *   DEL cut short) the rest of it goes;
   * - a record of ours with no journal entry is a DEL cut short, or a deleted
   *   record the snapshot resurrected: it goes.
   */
  private async recover(): Promise<void> {
    const { allocator, journal } = this.ready()
    const attempt = async (what: string, id: string, fn: () => Promise<unknown>) => {
      try {
        await fn()
        this.metrics.events.inc({ event: 'recovered' })
        this.log.warn({ attachment: id }, what)
      } catch (err) {
        this.log.warn({ err: errorMessage(err), attachment: id }, `${what}: failed`)
      }
    }
    for (const a of allocator.list()) {
      if (journal.get(endpointKey(this.c.peerId, a))) continue
      await attempt('released a half-made attachment', attachmentId(a), () => this.teardown(a, undefined))
    }
    for (const [key, v] of journal.list()) {
      if (!this.overlay(v.network)?.allocator.get(v)) {
        await attempt('finished an interrupted DEL', attachmentId(v), () => this.teardown(v, v))
        continue
      }
      const stored = this.c.store.get(key)
      const same = stored && endpointCodec.valueOf(stored)?.createdAt === v.createdAt
      if (!same) {
        await attempt('restored the endpoint record', attachmentId(v), () =>
          this.c.store.put(key, endpointCodec.encode(v)),
        )
      }
    }
    for (const r of this.c.store.list(`${ENDPOINT_PREFIX}${this.c.peerId}/`)) {
      const v = journal.get(r.key) ? undefined : endpointCodec.valueOf(r)
      if (!v) continue
      await attempt('removed a record without attachment', attachmentId(v), () => this.teardown(v, v))
    }
    // ADD makes the veth and the allocation at once: a veth whose allocation never
    // reached disk has neither an allocation nor a journal entry naming it.
    const bridgeNets = (this.c.networks?.list() ?? []).filter((n) => n.network.driver === 'bridge')
    const known = new Set([
      ...[allocator, ...bridgeNets.map((n) => n.addresses)].flatMap((a) => a.list().map(hostVethName)),
      ...journal.list().map(([, v]) => v.hostVeth),
    ])
    for (const name of await this.links.hostVeths()) {
      if (!/^plx[0-9a-f]{12}$/.test(name) || known.has(name)) continue
      await attempt('removed a veth without attachment', name, () => this.links.deleteHostVeth(name))
    }
  }

  /**
   * Finishes the DELs the plugin spooled while the agent was down. A record
   * releases only an attachment made before it: a container attached again
   * since (same id and interface) keeps its new attachment. A DEL that fails
   * keeps its file for the next start.
   */
  private async drainSpool(): Promise<void> {
    for (const { file, record } of await readSpool(this.c.spoolDirs ?? [])) {
      if (!record) {
        this.log.warn({ file }, 'removed a spool file that is not a DEL record')
      } else {
        const id = attachmentId(record)
        const existing = this.localRecord(endpointKey(this.c.peerId, record))
        if (existing && Date.parse(existing.createdAt) > record.at) {
          this.log.info({ attachment: id, file }, 'spooled DEL is older than the attachment: kept it')
        } else {
          try {
            await this.detach(record)
            this.log.warn(
              { attachment: id, netns: record.netns },
              'finished a DEL taken while the agent was down',
            )
          } catch (err) {
            this.log.warn(
              { err: errorMessage(err), attachment: id, file },
              'spooled DEL failed; retried at next start',
            )
            continue
          }
        }
      }
      await removeSpooled(file)
    }
  }

  // ---- listing (plexctl endpoints / inspect) ----

  /** Every endpoint in the cluster, as this host's store sees it. */
  list(): EndpointEntry[] {
    return this.c.store.list(ENDPOINT_PREFIX).flatMap((r: StoreRecord) => {
      const value = endpointCodec.valueOf(r)
      return value ? [{ key: r.key, owner: r.owner, local: r.owner === this.c.peerId, value }] : []
    })
  }

  /** Endpoints whose container id starts with `id`, or whose name is `id`. */
  find(id: string): EndpointEntry[] {
    const all = this.list()
    const exact = all.filter((e) => e.value.containerId === id || e.value.name === id)
    return exact.length ? exact : all.filter((e) => e.value.containerId.startsWith(id))
  }

  /** Live kernel view of a local endpoint: veth, container interface, routes, DNS. */
  async live(v: EndpointValue): Promise<EndpointLive> {
    this.ready()
    const lease = this.overlay(v.network)?.lease.current()
    const out: EndpointLive = { problems: [] }
    const host = await this.links.hostEnd(v.hostVeth, bridgeOf(v))
    if (host) out.hostVeth = host
    try {
      const container = await this.links.containerEnd(v.netns, v.ifname)
      if (container) out.container = container
    } catch (err) {
      out.problems.push(errorMessage(err))
    }
    if (lease) {
      const facts = this.facts(v, lease)
      out.dns = buildResult(facts, undefined).dns
      const observed = await this.observe(v, v.netns).catch(() => undefined)
      if (observed) out.problems.push(...checkProblems(facts, observed, undefined))
    }
    return out
  }
}
