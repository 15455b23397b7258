// Host attributes, the match operators on them, and the RTT between hosts.
import { distance } from '../../cluster/vivaldi.js'
import type { Attribute } from '../spec.js'
import type { HostView, PlacementOptions } from './types.js'

/** `name`, `address`, `zone` (the zone label) or `labels.<key>`; undefined when the host has none. */
export function attributeOf(host: HostView, attribute: Attribute): string | undefined {
  if (attribute === 'name') return host.name
  if (attribute === 'address') return host.address
  if (attribute === 'zone') return host.labels.zone
  return host.labels[attribute.slice('labels.'.length)]
}

export interface Match {
  attribute?: Attribute
  operator?: string
  value?: string
  values?: string[]
}

/** A predicate for one match (validated spec: the operator's fields are present). */
export function matcher(m: Match): (host: HostView) => boolean {
  const attr = m.attribute ?? 'name'
  const get = (h: HostView) => attributeOf(h, attr)
  switch (m.operator ?? '=') {
    case '=':
      return (h) => get(h) === m.value
    case '!=':
      return (h) => get(h) !== m.value
    case 'in': {
      const set = new Set(m.values)
      return (h) => {
        const v = get(h)
        return v !== undefined && set.has(v)
      }
    }
    case 'not_in': {
      const set = new Set(m.values)
      return (h) => {
        const v = get(h)
        return v === undefined || !set.has(v)
      }
    }
    case 'regexp': {
      const re = new RegExp(m.value ?? '')
      return (h) => {
        const v = get(h)
        return v !== undefined && re.test(v)
      }
    }
    case 'exists':
      return (h) => get(h) !== undefined
    default:
      throw new Error(`not a match operator: ${m.operator}`)
  }
}

/** How a match reads in a verdict: `zone = b`, `labels.disk in [ssd,nvme]`. */
export function describeMatch(m: Match): string {
  const op = m.operator ?? '='
  if (op === 'exists') return `${m.attribute} exists`
  if (op === 'in' || op === 'not_in') return `${m.attribute} ${op} [${(m.values ?? []).join(',')}]`
  return `${m.attribute} ${op} ${m.value}`
}

/**
 * RTT in ms between host indices: the override, or the Vivaldi estimate, or
 * `unknownRttMs` when a coordinate is missing; 0 on the same host. Cached by
 * rows allocated on first use: placement asks for the RTT from many
 * candidates to a few partner hosts, so few rows are ever made (a whole
 * matrix per call would cost more than the placement).
 */
export function rttModel(hosts: HostView[], opts: PlacementOptions): (a: number, b: number) => number {
  const n = hosts.length
  const unknown = opts.unknownRttMs ?? 100
  const raw = (a: number, b: number): number => {
    const ha = hosts[a] as HostView
    const hb = hosts[b] as HostView
    if (opts.rttMs) return opts.rttMs(ha, hb)
    if (!ha.coordinate || !hb.coordinate || ha.coordinate.vec.length !== hb.coordinate.vec.length)
      return unknown
    return distance(ha.coordinate, hb.coordinate) * 1000
  }
  const rows: (Float64Array | undefined)[] = new Array(n)
  return (a, b) => {
    if (a === b) return 0
    let row = rows[b]
    if (!row) {
      row = new Float64Array(n).fill(-1)
      rows[b] = row
    }
    let v = row[a] as number
    if (v < 0) {
      v = raw(a, b)
      row[a] = v
    }
    return v
  }
}

/** FNV-1a: ties between equally scored hosts go by hash(slot, host), deterministic yet not always the same host. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}
