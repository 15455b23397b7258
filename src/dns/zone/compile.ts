// Zone data → answer table: every (name, type) answer encoded once per zone
// change, so answering is a map lookup plus one buffer copy. Record sets that
// are shuffled per answer get several precomputed orders to pick from.
import dnsPacket from 'dns-packet'
import { runSteps, STEP_EVERY, type Steps } from '../../lib/steps.js'
import { nameToKey, RCODE_NOERROR, RCODE_NXDOMAIN, type Section, TYPE_ANY } from '../wire.js'
import type { Rr, ZoneData } from './records.js'

export interface NameAnswers {
  /** qtype → precomputed orders (length ≥ 1) */
  byType: Map<number, Section[]>
  /** the name exists but has nothing of the asked type */
  nodata: Section
}

export interface AnswerTable {
  originKey: string
  names: Map<string, NameAnswers>
  nxdomain: Section
  /** how many names and encoded bytes, for status output */
  size: { names: number; bytes: number }
}

/** how many precomputed orders a shuffled set gets (each record leads in at least one when n ≤ this) */
const MAX_ORDERS = 8
const SHUFFLED = new Set<Rr['type']>(['A', 'AAAA', 'SRV'])
const TYPE_CODE: Record<Rr['type'], number> = { A: 1, NS: 2, SOA: 6, PTR: 12, AAAA: 28, SRV: 33 }

// dns-packet's single-record encoder (not in its typings): each record is encoded once per compile
const encodeRecord = (dnsPacket as unknown as { answer: { encode(r: Rr): Buffer } }).answer.encode

/** Encodes records through a per-compile memo: the same record in several orders is encoded once. */
class Encoder {
  private readonly memo = new Map<Rr, Buffer>()
  bytes(r: Rr): Buffer {
    let b = this.memo.get(r)
    if (!b) {
      b = encodeRecord(r)
      this.memo.set(r, b)
    }
    return b
  }
  section(rcode: number, answers: Rr[], authorities: Rr[], additionals: Rr[]): Section {
    const parts = [...answers, ...authorities, ...additionals].map((r) => this.bytes(r))
    return {
      rcode,
      authoritative: true,
      an: answers.length,
      ns: authorities.length,
      ar: additionals.length,
      body: Buffer.concat(parts),
    }
  }
}

/** Orders of a record set: rotations of one random permutation, so each record leads equally often. */
export function orders<T>(set: T[], random: () => number = Math.random): T[][] {
  if (set.length < 2) return [set]
  const base = [...set]
  for (let i = base.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[base[i], base[j]] = [base[j]!, base[i]!]
  }
  const k = Math.min(base.length, MAX_ORDERS)
  const out: T[][] = []
  for (let i = 0; i < k; i++) {
    const r = Math.floor((i * base.length) / k)
    out.push([...base.slice(r), ...base.slice(0, r)])
  }
  return out
}

/**
 * What the previous compile produced per name, so an unchanged name is not
 * encoded again: a zone change (one endpoint, one health flip) re-encodes only
 * the names whose records changed. Kept by the caller, not in the table (the
 * table is also sent to worker processes).
 */
export class CompileMemo {
  entries = new Map<string, { fp: string; byType: Map<number, Section[]>; bytes: number }>()
}

function fingerprint(zn: ZoneData['names'] extends Map<string, infer N> ? N : never): string {
  let fp = ''
  for (const [into, m] of [
    ['=', zn.sets],
    ['+', zn.additional],
  ] as const) {
    for (const [type, set] of m) {
      fp += `${into}${type}`
      for (const r of set)
        fp += `|${r.name} ${r.ttl} ${typeof r.data === 'string' ? r.data : JSON.stringify(r.data)}`
    }
  }
  return fp
}

export function compileZone(zone: ZoneData, memo?: CompileMemo): AnswerTable {
  return runSteps(compileSteps(zone, memo))
}

/**
 * compileZone, yielding every STEP_EVERY names (src/lib/steps.ts). The memo is
 * replaced only at the end, so a run abandoned halfway leaves it as it was.
 */
export function* compileSteps(zone: ZoneData, memo?: CompileMemo): Steps<AnswerTable> {
  let n = 0
  const enc = new Encoder()
  const section = enc.section.bind(enc)
  const soa = [zone.soa]
  const nodata = section(RCODE_NOERROR, [], soa, [])
  const nxdomain = section(RCODE_NXDOMAIN, [], soa, [])
  const names = new Map<string, NameAnswers>()
  const next = new Map<string, { fp: string; byType: Map<number, Section[]>; bytes: number }>()
  let bytes = nodata.body.length + nxdomain.body.length
  for (const [name, zn] of zone.names) {
    if (++n % STEP_EVERY === 0) yield
    const key = nameToKey(name)
    // the apex carries the SOA (its serial changes every build) and the NS glue: always compiled
    const fp = name === zone.origin ? undefined : fingerprint(zn)
    const prev = fp === undefined ? undefined : memo?.entries.get(key)
    if (prev && prev.fp === fp) {
      names.set(key, { byType: prev.byType, nodata })
      next.set(key, prev)
      bytes += prev.bytes
      continue
    }
    const byType = new Map<number, Section[]>()
    const all: Rr[] = []
    let nameBytes = 0
    for (const [type, set] of zn.sets) {
      all.push(...set)
      const extra =
        type === 'SRV' ? [...(zn.additional.get('A') ?? []), ...(zn.additional.get('AAAA') ?? [])] : []
      const glue = type === 'NS' ? nsGlue(zone, set) : []
      const variants = (SHUFFLED.has(type) ? orders(set) : [set]).map((o) =>
        section(RCODE_NOERROR, o, [], [...extra, ...glue]),
      )
      for (const v of variants) nameBytes += v.body.length
      byType.set(TYPE_CODE[type], variants)
    }
    // ANY: everything at the name in one answer (RFC 8482 would allow less; tools expect this)
    if (all.length) byType.set(TYPE_ANY, [section(RCODE_NOERROR, all, [], [])])
    names.set(key, { byType, nodata })
    if (fp !== undefined) next.set(key, { fp, byType, bytes: nameBytes })
    bytes += nameBytes
    // a compiled name can be thousands of records (a big service): each one gets its own step
    if (all.length > STEP_EVERY) yield
  }
  if (memo) memo.entries = next
  return { originKey: nameToKey(zone.origin), names, nxdomain, size: { names: names.size, bytes } }
}

function nsGlue(zone: ZoneData, ns: Rr[]): Rr[] {
  const out: Rr[] = []
  for (const r of ns) {
    const target = zone.names.get(String(r.data))
    out.push(...(target?.sets.get('A') ?? []), ...(target?.sets.get('AAAA') ?? []))
  }
  return out
}
