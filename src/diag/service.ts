// components.diag: plexctl doctor and plexctl trace as the API calls them.
// Questions about another host go to that host's agent over the inspect
// protocol (src/cluster/inspect.ts); this module answers the same questions
// for its own host. It reads the kernel and the store, and changes neither.
import type { Inspector } from '../cluster/inspect.js'
import { BRIDGE_NAME, vtepName, WIREGUARD_NAME } from '../datapath/model.js'
import type { LeaseComponent } from '../ipam/manager.js'
import { PlexusError } from '../lib/errors.js'
import { within } from '../lib/within.js'
import { nodeCodec } from '../store/codecs.js'
import type { ReadableStore } from '../store/types.js'
import { NODE_PREFIX } from '../store/types.js'
import { type ClockSample, type DoctorFacts, type Finding, overall, runChecks } from './doctor/checks.js'
import { gatherDoctorFacts } from './doctor/facts.js'
import { type HostSide, traceHere } from './trace/hops.js'
import {
  type Diagnosis,
  diagnose,
  type Flow,
  type Hop,
  type Proto,
  parseTraceQuestion,
  type TraceQuestion,
} from './trace/model.js'
import { type Place, recordsOf, resolvePlace } from './trace/places.js'

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
}

export interface TraceReport {
  flow: Flow & { srcName: string; dstName: string; srcHost: string; dstHost: string }
  hops: Hop[]
  diagnosis: Diagnosis
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
      ...(cur && t
        ? {
            overlay: {
              backend: t,
              device: deviceOf(t, cur.network.Backend.VNI).device ?? cur.underlayInterface,
              underlay: cur.underlayInterface,
              lease: `leases/${peerId}`,
            },
          }
        : {}),
    }
  }

  async trace(req: TraceRequest): Promise<TraceReport> {
    const started = performance.now()
    const records = recordsOf(this.c.store)
    const src = resolvePlace(records, req.src)
    const dst = resolvePlace(records, req.dst)
    const flow: Flow = {
      src: src.ip,
      dst: dst.ip,
      proto: req.proto ?? (req.port === undefined ? 'icmp' : 'tcp'),
      ...(req.port === undefined ? {} : { port: req.port }),
    }
    const local = src.peer === dst.peer
    const ask = (p: Place, role: 'src' | 'dst') =>
      this.askTrace(p, {
        op: 'trace',
        role,
        flow,
        local,
        ...(p.endpointKey ? { endpointKey: p.endpointKey } : {}),
      })
    const [a, b] = await Promise.all([ask(src, 'src'), ask(dst, 'dst')])
    // a source that does not answer or drops the packet ends the path there
    const stopped = a.some((h) => h.action === 'dropped' || h.action === 'no-answer')
    const hops = stopped ? a : [...a, ...b]
    return {
      flow: { ...flow, srcName: src.named, dstName: dst.named, srcHost: src.host, dstHost: dst.host },
      hops,
      diagnosis: diagnose(hops),
      durationMs: Math.round(performance.now() - started),
    }
  }

  /**
   * One host's hops: here directly, elsewhere over the inspect protocol; a host that does not answer
   * is a hop too. This host's half has the same bound as a remote one's: a kernel that is slow to
   * answer (a loaded host, a long dump) must not hold the whole trace.
   */
  private async askTrace(p: Place, q: TraceQuestion): Promise<Hop[]> {
    if (p.peer === this.c.peerId)
      return within(traceHere(this.hostSide(), q), INSPECT_TIMEOUT_MS, () => [
        noAnswer(
          p,
          'this host',
          'PLX_INSPECT_TIMEOUT',
          `its own inspection took over ${INSPECT_TIMEOUT_MS} ms`,
        ),
      ])
    try {
      return (await this.c.inspector.ask(p.peer, q, INSPECT_TIMEOUT_MS)) as Hop[]
    } catch (err) {
      const code = (err as { code?: string }).code
      return [noAnswer(p, `/plexus/inspect/1 to ${p.peer}`, code, (err as Error).message)]
    }
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
    const findings = runChecks(facts)
    return { host: config.name, status: overall(findings), findings }
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
