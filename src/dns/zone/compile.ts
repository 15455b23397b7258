// Zone names → answer table: every (name, type) answer encoded once per change
// of the name, so answering is a map lookup plus one buffer copy. A record set
// that is shuffled per answer is encoded once in a random order and answered
// from one of several rotations of it (three copies instead of one). A record
// at the name asked for carries its name as a pointer to the question, which
// every reply has at offset 12, as authoritative servers compress it.
import dnsPacket from 'dns-packet'
import { runSteps, STEP_EVERY, type Steps } from '../../lib/steps.js'
import { nameToKey, RCODE_NOERROR, RCODE_NXDOMAIN, type Section, skipName, TYPE_ANY } from '../wire.js'
import type { Rr, ZoneData, ZoneName } from './records.js'

export interface NameAnswers {
  /**
   * qtype → its answer (with rotations for a shuffled set), or the orders of a
   * shuffled set too big for one reply, each with the leading records that fit;
   * a type not here answers the table's `nodata`
   */
  byType: Map<number, Section[]>
  /** encoded bytes, for status output */
  bytes: number
  /** a big name's records, encoded once: the name's next compile takes the unchanged ones from here */
  encoded?: Encoded
}

/**
 * A name's distinct records encoded back to back (record i is
 * `body[ends[i - 1] ?? 0, ends[i])`). Kept only for names of at least
 * KEEP_ENCODED records: a change to one member of a service of a thousand
 * re-encoded its names whole, which was most of the update's time (bench/zone);
 * one buffer per name costs a tenth of what a Buffer per record did. The body
 * is the name's answer itself when that holds every record (one set, all of it
 * in one reply: a service's SRV or A name), else a copy.
 */
export interface Encoded {
  records: Rr[]
  body: Buffer
  ends: Uint32Array
}

/** how many records a name holds before its encoding is kept (a small name is encoded again in microseconds) */
const KEEP_ENCODED = 64

export interface AnswerTable {
  originKey: string
  names: Map<string, NameAnswers>
  /**
   * The negative answers carry the SOA, whose serial changes with every zone
   * change: kept once for the table, not per name, so a change re-encodes only
   * the names it touched.
   */
  nodata: Section
  nxdomain: Section
  /** how many names and encoded bytes, for status output */
  size: { names: number; bytes: number }
}

/** how many precomputed orders a shuffled set gets (each record leads in at least one when n ≤ this) */
const MAX_ORDERS = 8
const SHUFFLED = new Set<Rr['type']>(['A', 'AAAA', 'SRV'])
const TYPE_CODE: Record<Rr['type'], number> = { A: 1, NS: 2, SOA: 6, PTR: 12, AAAA: 28, SRV: 33 }
/**
 * The most answer bytes one reply may carry: a DNS message over TCP is at most
 * 65,535 bytes, less the header (12), the longest question (a 255-byte name,
 * type and class: 259) and an EDNS OPT record (11). A set larger than this
 * (a service of a few thousand members) answers the part of each order that
 * fits, as Consul and CoreDNS cap big answers; before, it could answer nothing.
 */
export const MAX_ANSWER_BYTES = 65535 - 12 - 259 - 11

// dns-packet's single-record encoder (not in its typings): each record is encoded once per compile
const encodeRecord = (dnsPacket as unknown as { answer: { encode(r: Rr): Buffer } }).answer.encode

/**
 * A compression pointer to offset 12, the question's name in every reply
 * (RFC 1035 4.1.4). A record owned by the name asked for starts with it: a
 * set of fifty is 1.3-1.9 KB smaller, which at 50,000 registrations was a
 * third of the answer table (heap snapshot, bench/converge's size run).
 */
const QUESTION_NAME = Buffer.from([0xc0, 0x0c])

/** record r encoded with its name as QUESTION_NAME */
function encodeAtQuestion(r: Rr): Buffer {
  const full = encodeRecord(r)
  const rest = full.subarray(skipName(full, 0))
  const out = Buffer.allocUnsafe(QUESTION_NAME.length + rest.length)
  QUESTION_NAME.copy(out)
  rest.copy(out, QUESTION_NAME.length)
  return out
}

/**
 * Encodes records through a memo: the same record in several orders is
 * encoded once. One per update: kept across updates, a Buffer for every
 * record in use cost 150 MB of heap at 50,000 records (measured, bench/zone);
 * big names keep theirs in one buffer instead (`Encoded`).
 */
export class Encoder {
  private readonly memo = new Map<Rr, Buffer>()
  /** the same for records encoded at their own name (QUESTION_NAME): an NS target's address is also glue */
  private readonly memoAtQuestion = new Map<Rr, Buffer>()

  /**
   * The records of name's previous compile count as encoded (views into its
   * buffer; records are never mutated, and a record's name never changes).
   */
  reuse(e: Encoded, name: string): void {
    let start = 0
    for (let i = 0; i < e.records.length; i++) {
      const end = e.ends[i]!
      const r = e.records[i]!
      const memo = r.name === name ? this.memoAtQuestion : this.memo
      if (!memo.has(r)) memo.set(r, e.body.subarray(start, end))
      start = end
    }
  }

  /**
   * The records of an answer to name (its answers then its additional
   * records, as encoded in `s`), read from the answer's own body; undefined
   * when the body is not exactly those records back to back.
   */
  within(s: Section, records: Rr[], name: string): Encoded | undefined {
    if (s.ns !== 0 || s.an + s.ar !== records.length) return undefined
    const ends = new Uint32Array(records.length)
    let end = 0
    for (let i = 0; i < records.length; i++) ends[i] = end += this.bytes(records[i]!, name).length
    return end === s.body.length ? { records, body: s.body, ends } : undefined
  }

  /** records at name encoded into one buffer of their own (a copy: the views it was made of may go) */
  keep(records: Rr[], name: string): Encoded {
    const parts = records.map((r) => this.bytes(r, name))
    const ends = new Uint32Array(parts.length)
    let end = 0
    for (let i = 0; i < parts.length; i++) ends[i] = end += parts[i]!.length
    return { records, body: ownConcat(parts, end), ends }
  }

  /** r's wire form in a reply for name (its own name compressed there), or in any reply without `name` */
  bytes(r: Rr, name?: string): Buffer {
    const atQuestion = r.name === name
    const memo = atQuestion ? this.memoAtQuestion : this.memo
    let b = memo.get(r)
    if (!b) {
      b = atQuestion ? encodeAtQuestion(r) : encodeRecord(r)
      memo.set(r, b)
    }
    return b
  }

  /** a reply's records after the question; `name`: the name asked for (see bytes) */
  section(rcode: number, answers: Rr[], authorities: Rr[], additionals: Rr[], name?: string): Section {
    const parts = [...answers, ...authorities, ...additionals].map((r) => this.bytes(r, name))
    return {
      rcode,
      authoritative: true,
      an: answers.length,
      ns: authorities.length,
      ar: additionals.length,
      body: ownConcat(parts),
    }
  }

  /** Gives a section of all of `answers` the byte offsets of the records that begin its orders. */
  rotate(s: Section, answers: Rr[], starts: number[], name: string): void {
    const rotations = new Uint32Array(starts.length)
    let at = 0
    let next = 0
    for (let i = 0; i < answers.length; i++) {
      if (starts[next] === i) rotations[next++] = at
      at += this.bytes(answers[i]!, name).length
    }
    s.rotations = rotations
    s.anEnd = at
  }

  /**
   * A positive answer: all of `answers` with `additionals` when that fits in
   * MAX_ANSWER_BYTES, else the leading answers that fit, each with only the
   * additional records it brings along (`extrasOf`: an SRV's target address).
   */
  answer(name: string, answers: Rr[], additionals: Rr[], extrasOf: (r: Rr) => Rr[]): Section {
    let total = 0
    for (const r of answers) total += this.bytes(r, name).length
    for (const r of additionals) total += this.bytes(r, name).length
    if (total <= MAX_ANSWER_BYTES) return this.section(RCODE_NOERROR, answers, [], additionals, name)
    const an: Buffer[] = []
    const ar: Buffer[] = []
    let size = 0
    for (const r of answers) {
      const extras = extrasOf(r).map((x) => this.bytes(x, name))
      const b = this.bytes(r, name)
      const len = extras.reduce((n, x) => n + x.length, b.length)
      if (size + len > MAX_ANSWER_BYTES) break
      size += len
      an.push(b)
      ar.push(...extras)
    }
    return {
      rcode: RCODE_NOERROR,
      authoritative: true,
      an: an.length,
      ns: 0,
      ar: ar.length,
      body: ownConcat([...an, ...ar]),
    }
  }
}

/**
 * The parts copied into a buffer of its own. Buffer.concat cuts anything under
 * 4 KB out of Node's shared 8 KB pool, so a section the zone keeps pins its
 * whole slab, and slabs whose other sections were since replaced stay: in an
 * agent holding 30,000 registrations, 10,800 slabs (90 MB) held 27,000 section
 * bodies of 81 MB (heap snapshots before and after).
 */
function ownConcat(parts: Buffer[], total = parts.reduce((n, p) => n + p.length, 0)): Buffer {
  const out = Buffer.allocUnsafeSlow(total)
  let at = 0
  for (const p of parts) at += p.copy(out, at)
  return out
}

/** A random permutation of a record set (Fisher–Yates). */
export function shuffle<T>(set: T[], random: () => number = Math.random): T[] {
  const base = [...set]
  for (let i = base.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[base[i], base[j]] = [base[j]!, base[i]!]
  }
  return base
}

/** Where the orders of a shuffled set of n begin: up to MAX_ORDERS rotations, so each record leads equally often (each leads in one when n ≤ MAX_ORDERS). */
export function rotationStarts(n: number): number[] {
  const k = Math.min(n, MAX_ORDERS)
  return Array.from({ length: k }, (_, i) => Math.floor((i * n) / k))
}

const none = (_r: Rr): Rr[] => []

/**
 * The answers of one name (`zn`, its records, at `name`). Yields after each
 * order of a big set (thousands of members): a big service is the longest unit
 * of a zone change. `nsGlue` gives the addresses of NS targets (the apex's
 * additional section); `previous` is the name's last compile, whose kept
 * encodings are reused.
 */
export function* compileName(
  name: string,
  zn: ZoneName,
  enc: Encoder,
  nsGlue: (ns: Rr[]) => Rr[],
  previous?: NameAnswers,
): Steps<NameAnswers> {
  if (previous?.encoded) enc.reuse(previous.encoded, name)
  const byType = new Map<number, Section[]>()
  const all: Rr[] = []
  let bytes = 0
  /** a one-set name's whole answer (its answers, then its additional records), which can hold its kept encoding (Encoder.within) */
  let whole: { section: Section; answers: Rr[]; extra: Rr[] } | undefined
  for (const [type, set] of zn.sets) {
    all.push(...set)
    let extra: Rr[] = []
    let extrasOf: (r: Rr) => Rr[] = none
    if (type === 'SRV') {
      extra = [...(zn.additional.get('A') ?? []), ...(zn.additional.get('AAAA') ?? [])]
      const byTarget = new Map<string, Rr[]>()
      for (const r of extra) {
        const list = byTarget.get(r.name)
        if (list) list.push(r)
        else byTarget.set(r.name, [r])
      }
      extrasOf = (r) => byTarget.get(String(r.data.target)) ?? []
    } else if (type === 'NS') extra = nsGlue(set)
    const shuffled = SHUFFLED.has(type) && set.length > 1
    const base = shuffled ? shuffle(set) : set
    const first = enc.answer(name, base, extra, extrasOf)
    const variants = [first]
    if (shuffled && first.an === base.length) enc.rotate(first, base, rotationStarts(base.length), name)
    else if (shuffled)
      // too big for one reply: each order answers its own leading records, so every member still leads sometimes
      for (const r of rotationStarts(base.length).slice(1)) {
        if (set.length > STEP_EVERY) yield
        variants.push(enc.answer(name, [...base.slice(r), ...base.slice(0, r)], extra, extrasOf))
      }
    for (const v of variants) bytes += v.body.length
    byType.set(TYPE_CODE[type], variants)
    // an NS name's extra records are other names' (glue); elsewhere they are this name's additional records
    if (zn.sets.size === 1 && type !== 'NS' && first.an === base.length)
      whole = { section: first, answers: base, extra }
    if (set.length > STEP_EVERY) yield
  }
  // ANY: everything at the name in one answer (tools expect this). A name of one set answers that set's
  // answer, and a big name its first set's orders, as RFC 8482 allows (a subset of the sets): a copy of
  // every set once more was a sixth of the table at 50,000 registrations, and encoding a thousand records
  // once more per change cost more than any client of ANY gets from it
  if (zn.sets.size === 1 || all.length > STEP_EVERY) byType.set(TYPE_ANY, byType.values().next().value!)
  else if (all.length) {
    const s = enc.answer(name, all, [], none)
    byType.set(TYPE_ANY, [s])
    bytes += s.body.length
  }
  for (const list of zn.additional.values()) all.push(...list)
  if (all.length < KEEP_ENCODED) return { byType, bytes }
  const encoded =
    (whole &&
      whole.answers.length + whole.extra.length === all.length &&
      enc.within(whole.section, [...whole.answers, ...whole.extra], name)) ||
    enc.keep(all, name)
  return { byType, bytes, encoded }
}

/** NODATA and NXDOMAIN: no answer, the SOA in the authority section */
export function negativeAnswers(enc: Encoder, soa: Rr): { nodata: Section; nxdomain: Section } {
  return {
    nodata: enc.section(RCODE_NOERROR, [], [soa], []),
    nxdomain: enc.section(RCODE_NXDOMAIN, [], [soa], []),
  }
}

/** the A/AAAA records of the targets of NS records, from the zone's names */
export function glueFrom(names: Map<string, ZoneName>): (ns: Rr[]) => Rr[] {
  return (ns) =>
    ns.flatMap((r) => {
      const target = names.get(String(r.data))
      return [...(target?.sets.get('A') ?? []), ...(target?.sets.get('AAAA') ?? [])]
    })
}

/** The whole zone at once (tests, benches' reference); the agent patches a live one (live.ts). */
export function compileZone(zone: ZoneData): AnswerTable {
  const enc = new Encoder()
  const glue = glueFrom(zone.names)
  const names = new Map<string, NameAnswers>()
  const { nodata, nxdomain } = negativeAnswers(enc, zone.soa)
  let bytes = nodata.body.length + nxdomain.body.length
  for (const [name, zn] of zone.names) {
    const a = runSteps(compileName(name, zn, enc, glue))
    names.set(nameToKey(name), a)
    bytes += a.bytes
  }
  return { originKey: nameToKey(zone.origin), names, nodata, nxdomain, size: { names: names.size, bytes } }
}
