import { PlexusError } from '../lib/errors.js'
import type { Hlc, StoreRecord } from '../store/types.js'

// Messages between agents, JSON in UTF-8. Decoders treat every byte as
// hostile: size cap first, then shape; records inside are checked again by
// the store (signature, owner) before merge.

export const SYNC_PROTOCOL = '/plexus/sync/1'
export const DELTA_TOPIC = 'plexus/store/1'
/** one record with a value at the store's size cap, plus framing */
export const MAX_GOSSIP_BYTES = 96 * 1024
/** a full-state answer; far above any realistic store, bounded so a peer cannot exhaust memory */
export const MAX_SYNC_BYTES = 64 * 1024 * 1024
const MAX_DIGEST_ORIGINS = 100_000

export interface Delta {
  t: 'delta'
  records: unknown[]
}
/** digest {} asks for everything (full pull) */
export interface PullRequest {
  t: 'pull'
  digest: Record<string, Hlc>
}
export interface PullResponse {
  t: 'state'
  records: unknown[]
  marks: Record<string, Hlc>
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

export const encodeDelta = (records: StoreRecord[]): Uint8Array =>
  enc.encode(JSON.stringify({ t: 'delta', records }))
export const encodePull = (digest: Record<string, Hlc>): Uint8Array =>
  enc.encode(JSON.stringify({ t: 'pull', digest }))
export const encodeState = (records: StoreRecord[], marks: Record<string, Hlc>): Uint8Array =>
  enc.encode(JSON.stringify({ t: 'state', records, marks }))

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

function parseMarks(v: unknown): Record<string, Hlc> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('digest is not an object')
  const entries = Object.entries(v as Record<string, unknown>)
  if (entries.length > MAX_DIGEST_ORIGINS) bad('digest has too many origins')
  const out: Record<string, Hlc> = {}
  for (const [origin, h] of entries) {
    const o = h as Hlc
    if (origin.length > 128 || typeof o !== 'object' || o === null || !isInt(o.wall) || !isInt(o.logical)) {
      bad(`digest entry for ${origin.slice(0, 64)} is not an HLC`)
    }
    out[origin] = { wall: o.wall, logical: o.logical }
  }
  return out
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

export function decodePull(data: Uint8Array): PullRequest {
  const m = parse(data, MAX_SYNC_BYTES)
  if (m.t !== 'pull') bad('not a pull request')
  return { t: 'pull', digest: parseMarks(m.digest) }
}

export function decodeState(data: Uint8Array): PullResponse {
  const m = parse(data, MAX_SYNC_BYTES)
  if (m.t !== 'state') bad('not a state response')
  return { t: 'state', records: recordsOf(m), marks: parseMarks(m.marks) }
}
