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
}

const fail = (m: string) => new PlexusError('PLX_INSPECT_BAD_QUESTION', m)

/** a question from another member: outside input, checked field by field */
export function parseTraceQuestion(q: unknown): TraceQuestion {
  const o = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>
  if (o.role !== 'src' && o.role !== 'dst') throw fail('role must be src or dst')
  if (typeof o.local !== 'boolean') throw fail('local must be a boolean')
  if (o.endpointKey !== undefined && (typeof o.endpointKey !== 'string' || o.endpointKey.length > 512))
    throw fail('endpointKey must be a string')
  return {
    op: 'trace',
    role: o.role,
    flow: parseFlow(o.flow),
    local: o.local,
    ...(o.endpointKey === undefined ? {} : { endpointKey: o.endpointKey as string }),
  }
}

export function parseFlow(v: unknown): Flow {
  const f = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>
  for (const k of ['src', 'dst'] as const)
    if (typeof f[k] !== 'string' || parseIPv4(f[k] as string) === undefined)
      throw fail(`flow.${k} must be an IPv4 address`)
  if (!PROTOS.includes(f.proto as Proto)) throw fail('flow.proto must be tcp, udp or icmp')
  if (
    f.port !== undefined &&
    !(Number.isInteger(f.port) && (f.port as number) >= 1 && (f.port as number) <= 65535)
  )
    throw fail('flow.port must be 1-65535')
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
