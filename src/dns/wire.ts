// The DNS wire format on the answer path: a hand-written, bounds-checked query
// parser and reply assembly from precomputed sections. dns-packet is used to
// *encode* the zone once per change (zone/compile.ts); decoding every query with
// it would allocate a whole object graph per packet, which the hot path avoids.

export const TYPE_A = 1
export const TYPE_NS = 2
export const TYPE_SOA = 6
export const TYPE_PTR = 12
export const TYPE_AAAA = 28
export const TYPE_SRV = 33
export const TYPE_OPT = 41
export const TYPE_AXFR = 252
export const TYPE_ANY = 255
export const CLASS_IN = 1
export const CLASS_ANY = 255

export const RCODE_NOERROR = 0
export const RCODE_FORMERR = 1
export const RCODE_SERVFAIL = 2
export const RCODE_NXDOMAIN = 3
export const RCODE_NOTIMP = 4
export const RCODE_REFUSED = 5
/** extended rcode 16 = 1 in the OPT record's upper bits, 0 in the header */
export const RCODE_BADVERS = 16

const FLAG_QR = 0x8000
const FLAG_AA = 0x0400
const FLAG_TC = 0x0200
const FLAG_RD = 0x0100
const FLAG_RA = 0x0080
const FLAG_CD = 0x0010
const OPCODE_MASK = 0x7800

/** largest UDP answer we send with EDNS (the 2020 DNS flag day value, avoids fragmentation) */
export const MAX_UDP_PAYLOAD = 1232
/** classic DNS limit without EDNS */
export const PLAIN_UDP_PAYLOAD = 512
const MAX_NAME_WIRE = 255

export interface Query {
  /** the raw packet; only bytes [0, questionEnd) are trusted to be parsed */
  buf: Buffer
  id: number
  flags: number
  /** name in wire form with ASCII letters lower-cased, as a latin1 string (the answer-table key) */
  key: string
  /** offset just past QNAME (where QTYPE starts) */
  nameEnd: number
  /** offset just past QCLASS */
  questionEnd: number
  qtype: number
  qclass: number
  /** EDNS0 present: the client's advertised UDP payload size, else 0 */
  ednsSize: number
  /** EDNS version the client asked for (answered with BADVERS when > 0) */
  ednsVersion: number
  tcp: boolean
}

export type ParseResult =
  | { ok: true; query: Query }
  /** answerable error: we know the id and can reply with this rcode */
  | { ok: false; rcode: number; id: number; flags: number }
/** rcode -1: not a query at all (too short, or a response): drop silently, never loop with another server */

// One reusable scratch buffer for lower-casing the name: the key string is the only allocation.
const scratch = Buffer.allocUnsafe(MAX_NAME_WIRE)

/**
 * Reads name labels at off without following pointers; returns the offset past
 * the terminating zero, or -1 if the name is malformed, compressed or too long.
 * Used for the question (which may not be compressed: nothing precedes it).
 */
function readPlainName(buf: Buffer, off: number): number {
  const start = off
  for (;;) {
    if (off >= buf.length) return -1
    const len = buf[off]!
    if (len === 0) return off + 1 - start > MAX_NAME_WIRE ? -1 : off + 1
    if (len > 63) return -1
    off += len + 1
    if (off - start >= MAX_NAME_WIRE) return -1
  }
}

/**
 * Skips a possibly compressed name (resource records after the question);
 * returns the offset past it or -1. A pointer ends the name in place, so this
 * never follows pointers and cannot loop.
 */
export function skipName(buf: Buffer, off: number): number {
  const start = off
  for (;;) {
    if (off >= buf.length) return -1
    const len = buf[off]!
    if (len === 0) return off + 1
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1
    if (len > 63) return -1
    off += len + 1
    if (off - start >= MAX_NAME_WIRE) return -1
  }
}

/** Offset past one resource record starting at off, or -1. Reports the type through out[0]. */
function skipRecord(buf: Buffer, off: number, out: number[]): number {
  const p = skipName(buf, off)
  if (p < 0 || p + 10 > buf.length) return -1
  out[0] = buf.readUInt16BE(p)
  const end = p + 10 + buf.readUInt16BE(p + 8)
  return end <= buf.length ? end : -1
}

const typeOut = [0]

/** Parses and validates a query. Never throws, whatever the bytes. */
export function parseQuery(buf: Buffer, tcp: boolean): ParseResult {
  if (buf.length < 12) return { ok: false, rcode: -1, id: 0, flags: 0 }
  const id = buf.readUInt16BE(0)
  const flags = buf.readUInt16BE(2)
  if (flags & FLAG_QR) return { ok: false, rcode: -1, id, flags }
  if ((flags & OPCODE_MASK) !== 0) return { ok: false, rcode: RCODE_NOTIMP, id, flags }
  if (buf.readUInt16BE(4) !== 1) return { ok: false, rcode: RCODE_FORMERR, id, flags }
  const nameEnd = readPlainName(buf, 12)
  if (nameEnd < 0 || nameEnd + 4 > buf.length) return { ok: false, rcode: RCODE_FORMERR, id, flags }
  const qtype = buf.readUInt16BE(nameEnd)
  const qclass = buf.readUInt16BE(nameEnd + 2)
  const questionEnd = nameEnd + 4

  // Walk answer/authority/additional (normally 0/0/≤1) looking for OPT; any malformation is FORMERR.
  let ednsSize = 0
  let ednsVersion = 0
  const rest = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10)
  let off = questionEnd
  for (let i = 0; i < rest; i++) {
    const next = skipRecord(buf, off, typeOut)
    if (next < 0) return { ok: false, rcode: RCODE_FORMERR, id, flags }
    if (typeOut[0] === TYPE_OPT) {
      if (ednsSize) return { ok: false, rcode: RCODE_FORMERR, id, flags } // two OPT records: RFC 6891 6.1.1
      const p = skipName(buf, off)
      ednsSize = Math.max(buf.readUInt16BE(p + 2), PLAIN_UDP_PAYLOAD)
      ednsVersion = buf[p + 5]!
    }
    off = next
  }

  const n = nameEnd - 12
  for (let i = 0; i < n; i++) {
    const c = buf[12 + i]!
    scratch[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c
  }
  const key = scratch.toString('latin1', 0, n)
  return {
    ok: true,
    query: { buf, id, flags, key, nameEnd, questionEnd, qtype, qclass, ednsSize, ednsVersion, tcp },
  }
}

/** A precomputed answer: everything after the question, plus the header fields that go with it. */
export interface Section {
  rcode: number
  authoritative: boolean
  an: number
  ns: number
  ar: number
  /**
   * answer + authority + additional records, encoded without compression
   * but for names equal to the question's, which point to it (offset 12 in
   * every reply, whatever the name's length)
   */
  body: Buffer
  /**
   * A shuffled set's orders, kept as one encoding: the byte offset in `body`
   * of each order's first answer. Order k sends the answers from there to
   * `anEnd`, then those before it, then the rest. Eight encoded orders per set
   * were 80 MB of an agent holding 30,000 registrations (heap snapshot).
   */
  rotations?: Uint32Array
  /** where the answers end in `body` (with `rotations`) */
  anEnd?: number
}

const OPT_LEN = 11

function replyFlags(q: { flags: number }, rcode: number, authoritative: boolean): number {
  return (
    FLAG_QR |
    (q.flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) |
    (authoritative ? FLAG_AA : 0) |
    FLAG_RA |
    (rcode & 0xf)
  )
}

function writeOpt(out: Buffer, off: number, rcode: number): void {
  out[off] = 0 // root name
  out.writeUInt16BE(TYPE_OPT, off + 1)
  out.writeUInt16BE(MAX_UDP_PAYLOAD, off + 3)
  out[off + 5] = rcode >> 4 // extended rcode, upper 8 bits
  out[off + 6] = 0 // version
  out.writeUInt16BE(0, off + 7) // DO and Z: we do not sign
  out.writeUInt16BE(0, off + 9) // rdlength
}

/** The size limit for a reply to q on its transport. */
export function replyLimit(q: Query): number {
  if (q.tcp) return 65535
  return q.ednsSize ? Math.min(q.ednsSize, MAX_UDP_PAYLOAD) : PLAIN_UDP_PAYLOAD
}

/**
 * Header + the query's own question bytes (keeps the client's letter case, which
 * 0x20-randomising resolvers check) + a precomputed section, its answers from
 * byte `rotation` on when it has rotations (+ OPT when the client used EDNS).
 * Falls back to an empty TC reply when it does not fit.
 */
export function assemble(q: Query, s: Section, rotation = 0): Buffer {
  const edns = q.ednsSize > 0
  const len = q.questionEnd + s.body.length + (edns ? OPT_LEN : 0)
  if (len > replyLimit(q)) return truncated(q, s.rcode, s.authoritative)
  const out = Buffer.allocUnsafe(len)
  out.writeUInt16BE(q.id, 0)
  out.writeUInt16BE(replyFlags(q, s.rcode, s.authoritative), 2)
  out.writeUInt16BE(1, 4)
  out.writeUInt16BE(s.an, 6)
  out.writeUInt16BE(s.ns, 8)
  out.writeUInt16BE(s.ar + (edns ? 1 : 0), 10)
  q.buf.copy(out, 12, 12, q.questionEnd)
  if (rotation > 0 && s.anEnd !== undefined) {
    let at = q.questionEnd + s.body.copy(out, q.questionEnd, rotation, s.anEnd)
    at += s.body.copy(out, at, 0, rotation)
    s.body.copy(out, at, s.anEnd)
  } else s.body.copy(out, q.questionEnd)
  if (edns) writeOpt(out, q.questionEnd + s.body.length, s.rcode)
  return out
}

/** TC=1, question only: the client retries over TCP (RFC 7766). */
export function truncated(q: Query, rcode: number, authoritative: boolean): Buffer {
  const edns = q.ednsSize > 0
  const out = Buffer.allocUnsafe(q.questionEnd + (edns ? OPT_LEN : 0))
  out.writeUInt16BE(q.id, 0)
  out.writeUInt16BE(replyFlags(q, rcode, authoritative) | FLAG_TC, 2)
  out.writeUInt32BE(0x00010000, 4) // qd=1 an=0
  out.writeUInt32BE(edns ? 1 : 0, 8) // ns=0 ar
  q.buf.copy(out, 12, 12, q.questionEnd)
  if (edns) writeOpt(out, q.questionEnd, rcode)
  return out
}

/** An empty reply with rcode (SERVFAIL, REFUSED, BADVERS ...), question echoed. */
export function errorReply(q: Query, rcode: number): Buffer {
  return assemble(q, { rcode, authoritative: false, an: 0, ns: 0, ar: 0, body: EMPTY })
}

const EMPTY = Buffer.alloc(0)

/** Reply for a packet that failed to parse but carries an id: header only, no question. */
export function headerOnlyReply(id: number, flags: number, rcode: number): Buffer {
  const out = Buffer.alloc(12)
  out.writeUInt16BE(id, 0)
  out.writeUInt16BE(FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD)) | (rcode & 0xf), 2)
  return out
}

/** Dotted, lower-case form of a wire key ("\x03web\x03svc..." → "web.svc...."), for logs and tests. */
export function keyToName(key: string): string {
  const labels: string[] = []
  let i = 0
  while (i < key.length) {
    const len = key.charCodeAt(i)
    if (len === 0) break
    labels.push(key.slice(i + 1, i + 1 + len))
    i += len + 1
  }
  return labels.join('.')
}

/** Wire key of a dotted name (lower-cased, trailing dot optional). */
export function nameToKey(name: string): string {
  const n = name.toLowerCase().replace(/\.$/, '')
  if (!n) return '\0'
  return `${n
    .split('.')
    .map((l) => String.fromCharCode(l.length) + l)
    .join('')}\0`
}

/** True when key is name or a subdomain of it (both wire keys). */
export function keyWithin(key: string, zoneKey: string): boolean {
  return (
    key.endsWith(zoneKey) &&
    (key.length === zoneKey.length || isLabelBoundary(key, key.length - zoneKey.length))
  )
}

function isLabelBoundary(key: string, at: number): boolean {
  let i = 0
  while (i < at) i += key.charCodeAt(i) + 1
  return i === at
}

export interface ResponseTtls {
  /** offsets of the TTL field of every record except OPT */
  offsets: number[]
  ttls: number[]
  /** how long the whole response may be cached (RFC 2308 for negative answers), -1 if it may not */
  cacheTtl: number
}

/**
 * Walks a response from upstream and finds its TTL fields, so a cached copy
 * can be served with decremented TTLs without decoding it again. Undefined for
 * anything malformed (it is then passed through but not cached).
 */
export function responseTtls(buf: Buffer): ResponseTtls | undefined {
  if (buf.length < 12) return undefined
  const qd = buf.readUInt16BE(4)
  const an = buf.readUInt16BE(6)
  const ns = buf.readUInt16BE(8)
  const ar = buf.readUInt16BE(10)
  const rcode = buf.readUInt16BE(2) & 0xf
  let off = 12
  for (let i = 0; i < qd; i++) {
    off = skipName(buf, off)
    if (off < 0 || off + 4 > buf.length) return undefined
    off += 4
  }
  const offsets: number[] = []
  const ttls: number[] = []
  let min = Number.POSITIVE_INFINITY
  let soaMin = -1
  for (let i = 0; i < an + ns + ar; i++) {
    const p = skipName(buf, off)
    if (p < 0 || p + 10 > buf.length) return undefined
    const type = buf.readUInt16BE(p)
    const end = p + 10 + buf.readUInt16BE(p + 8)
    if (end > buf.length) return undefined
    if (type !== TYPE_OPT) {
      const ttl = buf.readUInt32BE(p + 4)
      offsets.push(p + 4)
      ttls.push(ttl)
      if (i < an + ns) min = Math.min(min, ttl)
      if (type === TYPE_SOA && i >= an && i < an + ns && end - 4 >= p + 10)
        soaMin = Math.min(ttl, buf.readUInt32BE(end - 4))
    }
    off = end
  }
  let cacheTtl = -1
  if (rcode === RCODE_NOERROR && an > 0) cacheTtl = min
  else if ((rcode === RCODE_NXDOMAIN || rcode === RCODE_NOERROR) && soaMin >= 0) cacheTtl = soaMin
  return { offsets, ttls, cacheTtl }
}
