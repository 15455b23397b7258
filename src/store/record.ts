import { PlexusError } from '../lib/errors.js'
import { compareHlc } from './hlc.js'
import { type JsonValue, OWNED_PREFIXES, type StoreRecord } from './types.js'

// Pure rules about single records: key syntax, ownership, canonical bytes
// for signatures, shape validation of outside input, and the LWW order.

export const MAX_KEY_LENGTH = 512
/** canonical JSON size cap for one value; larger writes and gossip are refused */
export const MAX_VALUE_BYTES = 64 * 1024
const MAX_TTL_MS = 365 * 24 * 3600 * 1000
// printable ASCII without space; no empty segments, no leading slash, no . or .. segments
const KEY_RE = /^[\x21-\x7e]+$/

export function keyError(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'key is empty'
  if (key.length > MAX_KEY_LENGTH) return `key is longer than ${MAX_KEY_LENGTH} characters`
  if (!KEY_RE.test(key)) return 'key must be printable ASCII without spaces'
  if (key.startsWith('/') || key.includes('//')) return 'key must not start with / or contain //'
  if (key.split('/').some((s) => s === '.' || s === '..')) return 'key must not contain . or .. segments'
  return undefined
}

/** Peer id that owns `key` (second segment under an owned prefix), or undefined for shared keys. */
export function keyOwner(key: string): string | undefined {
  const prefix = OWNED_PREFIXES.find((p) => key.startsWith(p))
  if (!prefix) return undefined
  const rest = key.slice(prefix.length)
  const i = rest.indexOf('/')
  return i < 0 ? rest : rest.slice(0, i)
}

/** Owner-only writes: owned namespaces only by the peer named in the key, everything else by any member. */
export function mayWrite(writer: string, key: string): boolean {
  const owner = keyOwner(key)
  return owner === undefined || owner === writer
}

/** JSON with object keys sorted, so every host derives the same bytes from the same value. */
export function canonicalJson(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  const keys = Object.keys(v).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k] as JsonValue)}`).join(',')}}`
}

/** The bytes the owner signs: every field but the signature, in a fixed order, domain-separated. */
export function signingText(r: Omit<StoreRecord, 'sig'>): string {
  return canonicalJson([
    'plexus/record/1',
    r.key,
    r.owner,
    r.version.wall,
    r.version.logical,
    r.ttlMs ?? null,
    r.tombstone,
    r.value,
  ])
}

/**
 * LWW order: higher HLC wins; equal HLCs (two writers in the same tick) are
 * broken by owner peer id, then by signature, so the order is total and
 * every host picks the same winner whatever the arrival order.
 */
export function compareRecords(a: StoreRecord, b: StoreRecord): number {
  const c = compareHlc(a.version, b.version)
  if (c !== 0) return c
  if (a.owner !== b.owner) return a.owner < b.owner ? -1 : 1
  return a.sig === b.sig ? 0 : a.sig < b.sig ? -1 : 1
}

/** TTL expiry is a function of the record alone (expiresAt = version.wall + ttlMs), so all hosts agree. */
export function expiresAt(r: StoreRecord): number | undefined {
  return r.ttlMs === undefined ? undefined : r.version.wall + r.ttlMs
}

export function isExpired(r: StoreRecord, now: number): boolean {
  const at = expiresAt(r)
  return at !== undefined && now >= at
}

const isInt = (n: unknown, min: number, max: number): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max

/** Shape check for a record from outside (gossip, sync, disk). Throws PLX_STORE_MALFORMED with the reason. */
export function parseRecord(x: unknown): StoreRecord {
  const bad = (why: string): never => {
    throw new PlexusError('PLX_STORE_MALFORMED', `malformed record: ${why}`)
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return bad('not an object')
  const o = x as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!['key', 'value', 'owner', 'version', 'ttlMs', 'tombstone', 'sig'].includes(k))
      bad(`unknown field ${k}`)
  }
  if (typeof o.key !== 'string') return bad('key is not a string')
  const kerr = keyError(o.key)
  if (kerr) bad(kerr)
  if (typeof o.owner !== 'string' || o.owner.length < 10 || o.owner.length > 128)
    bad('owner is not a peer id')
  const v = o.version as Record<string, unknown> | undefined
  if (typeof v !== 'object' || v === null) return bad('version missing')
  if (!isInt(v.wall, 0, Number.MAX_SAFE_INTEGER) || !isInt(v.logical, 0, 2 ** 31))
    bad('version is not an HLC')
  if (Object.keys(v).length !== 2) bad('version has extra fields')
  if (o.ttlMs !== undefined && !isInt(o.ttlMs, 1, MAX_TTL_MS)) bad('ttlMs out of range')
  if (typeof o.tombstone !== 'boolean') bad('tombstone is not a boolean')
  if (o.tombstone && o.value !== null) bad('tombstone carries a value')
  if (o.value === undefined) bad('value missing')
  if (typeof o.sig !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(o.sig))
    bad('sig is not a base64 Ed25519 signature')
  if (canonicalJson(o.value as JsonValue).length > MAX_VALUE_BYTES)
    bad(`value larger than ${MAX_VALUE_BYTES} bytes`)
  const r: StoreRecord = {
    key: o.key,
    value: o.value as JsonValue,
    owner: o.owner as string,
    version: { wall: v.wall as number, logical: v.logical as number },
    tombstone: o.tombstone as boolean,
    sig: o.sig as string,
  }
  if (o.ttlMs !== undefined) r.ttlMs = o.ttlMs as number
  return r
}
