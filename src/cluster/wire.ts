import { PlexusError } from '../lib/errors.js'
import type { Hlc, StoreRecord } from '../store/types.js'

// Messages between agents, JSON in UTF-8. Decoders treat every byte as
// hostile: size cap first, then shape; records inside are checked again by
// the store (signature, owner) before merge.

export const SYNC_PROTOCOL = '/plexus/sync/1'
/**
 * The gossip topic. 2: messages unsigned (gossipsub StrictNoSign, libp2p-transport.ts); an agent of
 * topic 1 (StrictSign) would reject them and be rejected, so the two meet only through sync.
 */
export const DELTA_TOPIC = 'plexus/store/2'
/** one record with a value at the store's size cap, plus framing */
export const MAX_GOSSIP_BYTES = 96 * 1024
/** a full-state answer; far above any realistic store, bounded so a peer cannot exhaust memory */
export const MAX_SYNC_BYTES = 64 * 1024 * 1024
const MAX_DIGEST_ORIGINS = 100_000

export interface Delta {
  t: 'delta'
  records: unknown[]
}
/**
 * digest {} asks for everything (full pull). `after` asks for the answer in
 * pages: "" for the first, then the `next` of the page before (requests
 * without it come from agents of earlier releases and get one answer).
 */
export interface PullRequest {
  t: 'pull'
  digest: Map<string, Hlc>
  after?: string
}
/** the second half of a push-pull exchange: what the responder lacked, by its own digest */
export interface PushRequest {
  t: 'push'
  records: unknown[]
  marks: Map<string, Hlc>
}
export interface PullResponse {
  t: 'state'
  records: unknown[]
  marks: Map<string, Hlc>
  /** more pages follow: ask again with after = next */
  next?: string
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

// Digests travel as [origin, wall, logical] triples: compact, and cheap to parse into a Map.
const marksJson = (m: ReadonlyMap<string, Hlc>) =>
  JSON.stringify([...m].map(([o, h]) => [o, h.wall, h.logical]))

export const encodeDelta = (records: StoreRecord[]): Uint8Array =>
  encodeDeltaOf(records.map((r) => JSON.stringify(r)))
/** a delta of records already JSON-encoded one by one (the replicator sizes its batches by them) */
export const encodeDeltaOf = (encoded: readonly string[]): Uint8Array =>
  enc.encode(`{"t":"delta","records":[${encoded.join(',')}]}`)
export const encodePull = (digest: ReadonlyMap<string, Hlc>, after?: string): Uint8Array =>
  enc.encode(
    `{"t":"pull","digest":${marksJson(digest)}${after === undefined ? '' : `,"after":${JSON.stringify(after)}`}}`,
  )
export const encodeState = (
  records: StoreRecord[],
  marks: ReadonlyMap<string, Hlc>,
  next?: string,
): Uint8Array =>
  encodeStateOf(
    records.map((r) => JSON.stringify(r)),
    marks,
    next,
  )
/** a state answer of records already JSON-encoded one by one (pageAfter sizes its pages by them) */
export const encodeStateOf = (
  encoded: readonly string[],
  marks: ReadonlyMap<string, Hlc>,
  next?: string,
): Uint8Array =>
  enc.encode(
    `{"t":"state","records":[${encoded.join(',')}],"marks":${marksJson(marks)}${next === undefined ? '' : `,"next":${JSON.stringify(next)}`}}`,
  )
/** a push of records already JSON-encoded one by one */
export const encodePushOf = (encoded: readonly string[], marks: ReadonlyMap<string, Hlc>): Uint8Array =>
  enc.encode(`{"t":"push","records":[${encoded.join(',')}],"marks":${marksJson(marks)}}`)

function bad(why: string): never {
  throw new PlexusError('PLX_CLUSTER_BAD_MESSAGE', why)
}

function parse(data: Uint8Array, max: number): Record<string, unknown> {
  if (data.byteLength > max) bad(`message of ${data.byteLength} bytes exceeds ${max}`)
  let v: unknown
  try {
    v = JSON.parse(dec.decode(data))
  } catch {
    bad('not UTF-8 JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not a JSON object')
  return v as Record<string, unknown>
}

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0

function parseMarks(v: unknown): Map<string, Hlc> {
  if (!Array.isArray(v)) bad('digest is not an array')
  if (v.length > MAX_DIGEST_ORIGINS) bad('digest has too many origins')
  const out = new Map<string, Hlc>()
  for (const e of v as unknown[]) {
    if (!Array.isArray(e) || e.length !== 3) bad('digest entry is not [origin, wall, logical]')
    const [origin, wall, logical] = e as unknown[]
    if (typeof origin !== 'string' || origin.length > 128 || !isInt(wall) || !isInt(logical)) {
      bad(`digest entry for ${String(origin).slice(0, 64)} is not an HLC`)
    }
    out.set(origin as string, { wall: wall as number, logical: logical as number })
  }
  return out
}

function optionalCursor(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length > 1024) bad(`${name} is not a page cursor`)
  return v
}

function recordsOf(m: Record<string, unknown>): unknown[] {
  if (!Array.isArray(m.records)) bad('records is not an array')
  return m.records as unknown[]
}

export function decodeDelta(data: Uint8Array): Delta {
  const m = parse(data, MAX_GOSSIP_BYTES)
  if (m.t !== 'delta') bad('not a delta')
  return { t: 'delta', records: recordsOf(m) }
}

export function decodeRequest(data: Uint8Array): PullRequest | PushRequest {
  const m = parse(data, MAX_SYNC_BYTES)
  if (m.t === 'pull') {
    const after = optionalCursor(m.after, 'after')
    return { t: 'pull', digest: parseMarks(m.digest), ...(after === undefined ? {} : { after }) }
  }
  if (m.t === 'push') return { t: 'push', records: recordsOf(m), marks: parseMarks(m.marks) }
  return bad('not a sync request')
}

export function decodeState(data: Uint8Array): PullResponse {
  const m = parse(data, MAX_SYNC_BYTES)
  if (m.t !== 'state') bad('not a state response')
  const next = optionalCursor(m.next, 'next')
  return {
    t: 'state',
    records: recordsOf(m),
    marks: parseMarks(m.marks),
    ...(next === undefined ? {} : { next }),
  }
}
