// A trace is a list of observations (Antrea Traceflow, ovn-trace): per hop,
// the host, the component, what it did to the packet, the kernel object that
// decided and the store record that made that object. Pure: the question
// one host is asked, its validation, and the diagnosis line.
import { parseIPv4 } from '../../ipam/cidr.js'
import { PlexusError } from '../../lib/errors.js'

export const PROTOS = ['tcp', 'udp', 'icmp'] as const
export type Proto = (typeof PROTOS)[number]

export interface Flow {
  src: string
  dst: string
  proto: Proto
  port?: number
}

export const ACTIONS = ['forwarded', 'delivered', 'nat', 'dropped', 'no-answer'] as const
export type Action = (typeof ACTIONS)[number]

export interface Hop {
  host: string
  component: string
  action: Action
  /** the kernel object that decided (a route, an FDB entry, a rule, a socket) */
  object: string
  /** the store record that made it, when one did */
  record?: string
  /** why, when the packet does not go on */
  cause?: string
  fix?: string
}

/** what one host is asked: its part of the path for this flow */
export interface TraceQuestion {
  op: 'trace'
  role: 'src' | 'dst'
  flow: Flow
  /** the container at this end, by its endpoint record (the host reads the rest from its own store) */
  endpointKey?: string
  /** both ends on this host: the dst part skips what the src part already showed */
  local: boolean
  /** dst: the flow goes to a port published on this host, DNAT'd to the endpoint's container */
  publish?: Published
}

/** a published port as a trace's destination host sees the packet and where its DNAT sends it */
export interface Published {
  /** the address and port the packet is sent to (flow.dst, flow.port) arrive as src after the source's NAT */
  arrivingSrc: string
  containerIp: string
  containerPort: number
}

/** what a trace's source host is asked first when the destination is a name: resolve it as its container would */
export interface ResolveQuestion {
  op: 'resolve'
  name: string
  endpointKey?: string
}

const fail = (m: string) => new PlexusError('PLX_INSPECT_BAD_QUESTION', m)
const isPort = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535

/** a question from another member: outside input, checked field by field */
export function parseTraceQuestion(q: unknown): TraceQuestion {
  const o = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>
  if (o.role !== 'src' && o.role !== 'dst') throw fail('role must be src or dst')
  if (typeof o.local !== 'boolean') throw fail('local must be a boolean')
  return {
    op: 'trace',
    role: o.role,
    flow: parseFlow(o.flow),
    local: o.local,
    ...endpointKeyOf(o),
    ...(o.publish === undefined ? {} : { publish: parsePublished(o.publish) }),
  }
}

function parsePublished(v: unknown): Published {
  const p = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>
  for (const k of ['arrivingSrc', 'containerIp'] as const)
    if (typeof p[k] !== 'string' || parseIPv4(p[k] as string) === undefined)
      throw fail(`publish.${k} must be an IPv4 address`)
  if (!isPort(p.containerPort)) throw fail('publish.containerPort must be 1-65535')
  return {
    arrivingSrc: p.arrivingSrc as string,
    containerIp: p.containerIp as string,
    containerPort: p.containerPort as number,
  }
}

/** trace --probe: the source host sends one packet of the flow from the endpoint's namespace */
export interface ProbeQuestion {
  op: 'probe'
  flow: Flow
  endpointKey?: string
}

export function parseProbeQuestion(q: unknown): ProbeQuestion {
  const o = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>
  return { op: 'probe', flow: parseFlow(o.flow), ...endpointKeyOf(o) }
}

/** after a probe, each host on the path: the flow's tuple as it passes there (after the source's NAT) */
export interface SeenQuestion {
  op: 'seen'
  src: string
  dst: string
  proto: Proto
  dport?: number
  sport?: number
}

export function parseSeenQuestion(q: unknown): SeenQuestion {
  const o = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>
  const f = parseFlow({ src: o.src, dst: o.dst, proto: o.proto, port: o.dport })
  if (o.sport !== undefined && !isPort(o.sport)) throw fail('sport must be 1-65535')
  return {
    op: 'seen',
    src: f.src,
    dst: f.dst,
    proto: f.proto,
    ...(f.port === undefined ? {} : { dport: f.port }),
    ...(o.sport === undefined ? {} : { sport: o.sport as number }),
  }
}

function endpointKeyOf(o: Record<string, unknown>): { endpointKey?: string } {
  if (o.endpointKey === undefined) return {}
  if (typeof o.endpointKey !== 'string' || o.endpointKey.length > 512)
    throw fail('endpointKey must be a string')
  return { endpointKey: o.endpointKey }
}

export function parseResolveQuestion(q: unknown): ResolveQuestion {
  const o = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>
  if (typeof o.name !== 'string' || o.name.length < 1 || o.name.length > 253)
    throw fail('name must be a string of 1-253 characters')
  return { op: 'resolve', name: o.name, ...endpointKeyOf(o) }
}

export function parseFlow(v: unknown): Flow {
  const f = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>
  for (const k of ['src', 'dst'] as const)
    if (typeof f[k] !== 'string' || parseIPv4(f[k] as string) === undefined)
      throw fail(`flow.${k} must be an IPv4 address`)
  if (!PROTOS.includes(f.proto as Proto)) throw fail('flow.proto must be tcp, udp or icmp')
  if (f.port !== undefined && !isPort(f.port)) throw fail('flow.port must be 1-65535')
  return {
    src: f.src as string,
    dst: f.dst as string,
    proto: f.proto as Proto,
    ...(f.port === undefined ? {} : { port: f.port as number }),
  }
}

export interface Diagnosis {
  ok: boolean
  /** index into hops of the broken hop */
  hop?: number
  line: string
}

/** one line: the first hop that stops the packet, its cause and its fix; or that the path is whole */
export function diagnose(hops: Hop[]): Diagnosis {
  const i = hops.findIndex((h) => h.action === 'dropped' || h.action === 'no-answer')
  const h = hops[i]
  if (!h) {
    const last = hops[hops.length - 1]
    return {
      ok: true,
      line: `path ok: ${hops.length} hops, delivered${last ? ` on ${last.host} (${last.object})` : ''}`,
    }
  }
  const what = h.action === 'no-answer' ? `${h.host} did not answer` : `${h.component} on ${h.host} drops it`
  return {
    ok: false,
    hop: i,
    line: `${what}: ${h.cause ?? h.object}${h.fix ? `; fix: ${h.fix}` : ''}`,
  }
}
