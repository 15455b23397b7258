// components.diag: plexctl doctor and plexctl trace as the API calls them.
// Questions about another host go to that host's agent over the inspect
// protocol (src/cluster/inspect.ts); this module answers the same questions
// for its own host. It reads the kernel and the store, and changes neither.
import type { Inspector } from '../cluster/inspect.js'
import type { RefusalSource } from '../cluster/refusals.js'
import { BRIDGE_NAME, vtepName, WIREGUARD_NAME } from '../datapath/model.js'
import type { DatapathComponent } from '../datapath/service.js'
import type { LeaseComponent } from '../ipam/manager.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import { within } from '../lib/within.js'
import { nodeCodec } from '../store/codecs.js'
import type { ReadableStore } from '../store/types.js'
import { NODE_PREFIX } from '../store/types.js'
import { type ClockSample, type DoctorFacts, type Finding, overall, runChecks } from './doctor/checks.js'
import { gatherDoctorFacts } from './doctor/facts.js'
import { endpointOf, type HostSide, traceHere } from './trace/hops.js'
import {
  type Diagnosis,
  diagnose,
  type Flow,
  type Hop,
  type ProbeQuestion,
  type Proto,
  parseProbeQuestion,
  parseResolveQuestion,
  parseSeenQuestion,
  parseTraceQuestion,
  type ResolveQuestion,
  type SeenQuestion,
  type TraceQuestion,
} from './trace/model.js'
import { isDnsName } from './trace/names.js'
import { arrivingSource, type Place, publishedOn, recordsOf, resolvePlace } from './trace/places.js'
import { PROBE_TIMEOUT_MS, type ProbeResult, type Seen, seenHere, sendProbe } from './trace/probe.js'
import { type Resolved, resolveName } from './trace/resolve.js'

/** bytes each backend's encapsulation adds to a packet (src/datapath/README.md) */
const OVERHEAD: Record<string, number> = { vxlan: 50, wireguard: 60, 'host-gw': 0 }

/** how long a remote host gets to answer before it is shown as not answering (the issue bounds that at 2 s) */
export const INSPECT_TIMEOUT_MS = 1800
/** a clock question is answered at once; a slower answer measures the network, not the clock */
const CLOCK_TIMEOUT_MS = 500

export interface DoctorReport {
  host: string
  status: Finding['status']
  findings: Finding[]
}

export interface TraceRequest {
  src: string
  dst: string
  port?: number
  proto?: Proto
  /** also send one real packet of the flow and report its answer and where it was seen */
  probe?: boolean
}

export interface TraceReport {
  flow: Flow & { srcName: string; dstName: string; srcHost: string; dstHost: string }
  hops: Hop[]
  diagnosis: Diagnosis
  probe?: ProbeResult & { seen: Seen[] }
  durationMs: number
}

export interface DiagComponent {
  /** checks one host (this one when host is absent or names it) */
  doctor(host?: string): Promise<DoctorReport>
  /** the path of one flow, hop by hop, from the kernel of each host on it */
  trace(req: TraceRequest): Promise<TraceReport>
}

export interface DiagComponents {
  config: {
    name: string
    dns: { enabled: boolean; listenGateway: boolean }
    /** the failure detector's slack for clock skew (src/cluster/membership.ts): the doctor's clock tolerance */
    cluster: { heartbeatIntervalMs: number }
  }
  peerId: string
  store: ReadableStore
  lease: LeaseComponent
  inspector: Inspector
  /** the cluster's refused handshakes (the cluster-key check) */
  handshakes: RefusalSource
  /** Plexus' firewall rules as the kernel has them (the DNAT of a published port, the masquerade) */
  datapath: Pick<DatapathComponent, 'firewallView'>
}

export class DiagService implements DiagComponent {
  constructor(private readonly c: DiagComponents) {}

  start(): void {
    this.c.inspector.serve((_from, q) => this.answer(q))
  }

  /** one inspect question from another member, validated: it is outside input */
  private async answer(q: unknown): Promise<unknown> {
    const op = (q as { op?: unknown } | null)?.op
    if (op === 'doctor') return this.doctorHere()
    if (op === 'clock') return { now: Date.now() }
    if (op === 'trace') return traceHere(this.hostSide(), parseTraceQuestion(q))
    if (op === 'resolve') return this.resolveHere(parseResolveQuestion(q))
    if (op === 'probe') return this.probeHere(parseProbeQuestion(q))
    if (op === 'seen') return seenHere(this.c.config.name, parseSeenQuestion(q))
    throw new PlexusError(
      'PLX_INSPECT_BAD_QUESTION',
      `unknown inspect question ${JSON.stringify(op)?.slice(0, 40)}`,
    )
  }

  /** the peer id of a host name (from the membership records) */
  peerOf(host: string): string | undefined {
    for (const r of this.c.store.list(NODE_PREFIX)) {
      const name = nodeCodec.valueOf(r)?.name
      if (name === host || r.key.slice(NODE_PREFIX.length) === host) return r.key.slice(NODE_PREFIX.length)
    }
    return undefined
  }

  async doctor(host?: string): Promise<DoctorReport> {
    if (host === undefined || host === this.c.config.name || host === this.c.peerId) return this.doctorHere()
    const peer = this.peerOf(host)
    if (!peer)
      throw new PlexusError('PLX_DIAG_UNKNOWN_HOST', `no host named ${host} in the cluster`, { status: 404 })
    return (await this.c.inspector.ask(peer, { op: 'doctor' }, INSPECT_TIMEOUT_MS)) as DoctorReport
  }

  private hostSide(): HostSide {
    const { config, peerId, store, lease } = this.c
    const cur = lease.current()
    const t = cur?.network.Backend.Type
    return {
      name: config.name,
      peerId,
      store,
      firewallView: () => this.c.datapath.firewallView(),
      ...(cur && t
        ? {
            overlay: {
              backend: t,
              device: deviceOf(t, cur.network.Backend.VNI).device ?? cur.underlayInterface,
              underlay: cur.underlayInterface,
              lease: `leases/${peerId}`,
              network: cur.network.Network,
              ipMasq: cur.network.IPMasq,
            },
          }
        : {}),
    }
  }

  async trace(req: TraceRequest): Promise<TraceReport> {
    const started = performance.now()
    const records = recordsOf(this.c.store)
    const src = resolvePlace(records, req.src)
    const proto = req.proto ?? (req.port === undefined ? 'icmp' : 'tcp')
    const to = await this.destination(records, src, req.dst)
    const report = (flow: TraceReport['flow'], hops: Hop[]): TraceReport => ({
      flow,
      hops,
      diagnosis: diagnose(hops),
      durationMs: Math.round(performance.now() - started),
    })
    const names = { srcName: src.named, dstName: req.dst, srcHost: src.host }
    if (!('place' in to)) return report({ src: src.ip, dst: '-', proto, ...names, dstHost: '-' }, [to.dns])
    const dst = to.place
    const local = src.peer === dst.peer
    // HOST:PORT of a published port: the packet goes to the host's address and its DNAT sends it on
    const pub =
      dst.kind === 'host' && req.port !== undefined && proto !== 'icmp'
        ? publishedOn(records, dst.peer, req.port, proto)
        : undefined
    const flow: Flow = {
      src: src.ip,
      dst: pub ? pub.hostIp : dst.ip,
      proto,
      ...(req.port === undefined ? {} : { port: req.port }),
    }
    const endpointKey = pub?.endpointKey ?? dst.endpointKey
    const ipMasq = this.c.lease.current()?.network.IPMasq ?? true
    const arriving = local ? src.ip : arrivingSource(records, src, ipMasq)
    const [a, b, probe] = await Promise.all([
      this.askTrace(src, {
        op: 'trace',
        role: 'src',
        flow,
        local,
        ...(src.endpointKey ? { endpointKey: src.endpointKey } : {}),
      }),
      this.askTrace(dst, {
        op: 'trace',
        role: 'dst',
        flow,
        local,
        ...(endpointKey ? { endpointKey } : {}),
        ...(pub
          ? {
              publish: {
                arrivingSrc: arriving,
                containerIp: pub.containerIp,
                containerPort: pub.containerPort,
              },
            }
          : {}),
      }),
      req.probe ? this.probe(src, dst, flow, pub ? arriving : flow.src) : undefined,
    ])
    // a source that does not answer or drops the packet ends the path there
    const stopped = a.some((h) => h.action === 'dropped' || h.action === 'no-answer')
    const r = report({ ...flow, ...names, dstName: dst.named, dstHost: dst.host }, [
      ...(to.dns ? [to.dns] : []),
      ...(stopped ? a : [...a, ...b]),
    ])
    return {
      ...r,
      ...(probe ? { probe, diagnosis: withProbe(r.diagnosis, probe, flow) } : {}),
    }
  }

  /**
   * trace --probe: the source host sends the packet; then each host on the path says whether its
   * conntrack saw the flow (on the destination host as it arrives there: `arrivingSrc`, after the
   * source's masquerade of a published port's flow). A host that does not answer is shown unseen.
   */
  private async probe(
    src: Place,
    dst: Place,
    flow: Flow,
    arrivingSrc: string,
  ): Promise<TraceReport['probe']> {
    const q: ProbeQuestion = {
      op: 'probe',
      flow,
      ...(src.endpointKey ? { endpointKey: src.endpointKey } : {}),
    }
    let sent: ProbeResult
    try {
      sent = await this.ask<ProbeResult>(src, q, PROBE_TIMEOUT_MS + INSPECT_TIMEOUT_MS)
    } catch (err) {
      return { outcome: 'error', detail: `${src.host} did not send it: ${errorMessage(err)}`, seen: [] }
    }
    // a refused connection leaves no conntrack entry to find: the kernel drops an entry at an RST
    // that answers its first SYN; the RST itself came from the far end
    if (sent.outcome === 'refused' && flow.proto === 'tcp')
      return {
        ...sent,
        detail: `${sent.detail}; conntrack forgets a connection refused at its SYN`,
        seen: [],
      }
    const ports = {
      ...(flow.port === undefined || flow.proto === 'icmp' ? {} : { dport: flow.port }),
      ...(sent.sport === undefined ? {} : { sport: sent.sport }),
    }
    const ask = (p: Place, from: string): Promise<Seen> => {
      const sq: SeenQuestion = { op: 'seen', src: from, dst: flow.dst, proto: flow.proto, ...ports }
      return this.ask<Seen>(p, sq, INSPECT_TIMEOUT_MS).catch((err: unknown) => ({
        host: p.host,
        seen: false,
        object: `no answer: ${errorMessage(err)}`,
      }))
    }
    const seen = await Promise.all(
      src.peer === dst.peer ? [ask(src, flow.src)] : [ask(src, flow.src), ask(dst, arrivingSrc)],
    )
    return { ...sent, seen }
  }

  /** the probe question on this host: one packet from the endpoint's namespace (or this host's own) */
  private probeHere(q: ProbeQuestion): Promise<ProbeResult> {
    return sendProbe(endpointOf(this.hostSide(), q.endpointKey)?.netns, q.flow)
  }

  /**
   * The destination: a container, host or address the store knows; else a DNS name, resolved on the
   * source host as its container's resolver would (src/diag/trace/resolve.ts), that answer the first hop.
   */
  private async destination(
    records: ReturnType<typeof recordsOf>,
    src: Place,
    text: string,
  ): Promise<{ place: Place; dns?: Hop } | { dns: Hop }> {
    try {
      return { place: resolvePlace(records, text) }
    } catch (err) {
      if ((err as PlexusError).code !== 'PLX_TRACE_UNKNOWN' || !isDnsName(text)) throw err
    }
    const q: ResolveQuestion = {
      op: 'resolve',
      name: text,
      ...(src.endpointKey ? { endpointKey: src.endpointKey } : {}),
    }
    let r: Resolved
    try {
      r = await this.ask<Resolved>(src, q, INSPECT_TIMEOUT_MS)
    } catch (err) {
      return { dns: this.unanswered(src, err) }
    }
    const first = r.addresses[0]
    if (first === undefined) return { dns: r.hop }
    try {
      return { place: { ...resolvePlace(records, first), named: text }, dns: r.hop }
    } catch {
      throw new PlexusError(
        'PLX_TRACE_UNKNOWN',
        `${text} resolves to ${first}, outside the cluster network: Plexus traces only its own paths`,
        { status: 404 },
      )
    }
  }

  /** the resolve question on this host: from the endpoint's namespace (or this host's) to its gateway's DNS */
  private async resolveHere(q: ResolveQuestion): Promise<Resolved> {
    const cur = this.c.lease.current()
    if (!cur)
      throw new PlexusError('PLX_TRACE_UNKNOWN', `${this.c.config.name} holds no lease: no DNS to ask`)
    const ep = endpointOf(this.hostSide(), q.endpointKey)
    return resolveName(
      { name: this.c.config.name, store: this.c.store },
      {
        ...(ep ? { netns: ep.netns } : {}),
        nameserver: cur.gateway,
        ...(q.endpointKey ? { endpointKey: q.endpointKey } : {}),
      },
      q.name,
    )
  }

  /**
   * One question to the host at `p`: answered here directly (the same `answer` other members
   * reach), elsewhere over the inspect protocol. This host's answer has the same bound as a remote
   * one's: a kernel that is slow to answer (a loaded host, a long dump) must not hold the trace.
   */
  private async ask<T>(p: Place, q: { op: string }, ms: number): Promise<T> {
    if (p.peer !== this.c.peerId) return (await this.c.inspector.ask(p.peer, q, ms)) as T
    const r = await within(
      this.answer(q).then((value) => ({ value })),
      ms,
      () => undefined,
    )
    if (!r) throw new PlexusError('PLX_INSPECT_TIMEOUT', `its own answer took over ${ms} ms`)
    return r.value as T
  }

  /** the hop of a host whose answer did not come */
  private unanswered(p: Place, err: unknown): Hop {
    return noAnswer(
      p,
      p.peer === this.c.peerId ? 'this host' : `/plexus/inspect/1 to ${p.peer}`,
      (err as { code?: string }).code,
      errorMessage(err),
    )
  }

  /** One host's hops; a host that does not answer is a hop too. */
  private askTrace(p: Place, q: TraceQuestion): Promise<Hop[]> {
    return this.ask<Hop[]>(p, q, INSPECT_TIMEOUT_MS).catch((err: unknown) => [this.unanswered(p, err)])
  }

  /**
   * Each other member's clock against this host's, NTP-style over the inspect protocol: the
   * offset is its time minus the middle of the question's round trip, uncertain by half of it.
   * A member that does not answer in time (dead, an older agent) is left out.
   */
  private async clockOffsets(): Promise<ClockSample[]> {
    const { store, inspector, peerId } = this.c
    const peers = store
      .list(NODE_PREFIX)
      .map((r) => ({ peer: r.key.slice(NODE_PREFIX.length), name: nodeCodec.valueOf(r)?.name }))
      .filter((p) => p.peer !== peerId && p.name !== undefined)
    const samples = await Promise.all(
      peers.map(async ({ peer, name }): Promise<ClockSample | undefined> => {
        const t0 = Date.now()
        try {
          const a = (await inspector.ask(peer, { op: 'clock' }, CLOCK_TIMEOUT_MS)) as { now?: unknown } | null
          const t1 = Date.now()
          if (typeof a?.now !== 'number') return undefined
          return { host: name as string, offsetMs: Math.round(a.now - (t0 + t1) / 2), rttMs: t1 - t0 }
        } catch {
          return undefined
        }
      }),
    )
    return samples.filter((s): s is ClockSample => s !== undefined)
  }

  private async doctorHere(): Promise<DoctorReport> {
    const { lease, config } = this.c
    const cur = lease.current()
    const st = lease.status()
    const overlay: DoctorFacts['overlay'] = cur
      ? {
          backend: cur.network.Backend.Type,
          ...(cur.network.Backend.Type === 'host-gw' ? {} : { port: cur.network.Backend.Port }),
          bridge: BRIDGE_NAME,
          ...deviceOf(cur.network.Backend.Type, cur.network.Backend.VNI),
          underlay: cur.underlayInterface,
          overhead: OVERHEAD[cur.network.Backend.Type] ?? 0,
          mtu: cur.mtu,
          network: cur.network.Network,
        }
      : undefined
    const facts = await gatherDoctorFacts({
      ...(overlay ? { overlay } : {}),
      lease: {
        state: st.state,
        ...(st.reason ? { reason: st.reason } : {}),
        ...(st.subnet ? { subnet: st.subnet } : {}),
      },
      ...(cur && config.dns.enabled && config.dns.listenGateway ? { dnsAddress: cur.gateway } : {}),
    })
    facts.clock = { toleranceMs: config.cluster.heartbeatIntervalMs, peers: await this.clockOffsets() }
    const refused = this.c.handshakes.refusals()
    if (refused) facts.handshakes = { now: Date.now(), refused }
    const findings = runChecks(facts)
    return { host: config.name, status: overall(findings), findings }
  }
}

/**
 * Every hop forwards, yet the real packet got no answer: the kernel state read is not the whole
 * story (a rule Plexus does not read, a process that does not answer). Said, with where the packet
 * was last seen. UDP is left as it is: a UDP service need not answer.
 */
function withProbe(d: Diagnosis, p: NonNullable<TraceReport['probe']>, flow: Flow): Diagnosis {
  if (!d.ok || flow.proto === 'udp' || (p.outcome !== 'no-answer' && p.outcome !== 'error')) return d
  const last = p.seen.filter((s) => s.seen).at(-1)
  return {
    ok: false,
    line: `every hop forwards, yet the probe got no answer (${p.detail}); ${last ? `last seen on ${last.host}: ${last.object}` : 'seen on no host'}`,
  }
}

function deviceOf(type: string, vni: number): { device?: string } {
  if (type === 'vxlan') return { device: vtepName(vni) }
  if (type === 'wireguard') return { device: WIREGUARD_NAME }
  return {}
}

/** the hop of a host whose half of a trace did not come */
function noAnswer(p: Place, object: string, code: string | undefined, message: string): Hop {
  return {
    host: p.host,
    component: 'agent',
    action: 'no-answer',
    object,
    cause: `${code ?? 'error'}: ${message}`,
    fix:
      code === 'PLX_INSPECT_TIMEOUT' || code === 'PLX_INSPECT_FAILED'
        ? `check plexusd on ${p.host} (plexctl hosts shows whether it is alive)`
        : 'see the agent log on that host',
  }
}
