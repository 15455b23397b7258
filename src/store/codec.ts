// One typed codec per key prefix (the prefixes' codecs: codecs.ts). A value
// read from the store may have arrived by gossip from any member, so every
// reader decodes it here instead of trusting a cast; a writer encodes through
// the same codec, so what it puts is what every reader accepts. The shapes
// are TypeBox schemas (schemas.ts) compiled by TypeBox's TypeCompiler on a
// prefix's first use, not at import: start-up pays only for the prefixes it
// reads (src/lib/lazy.ts).
import type { TSchema } from '@sinclair/typebox'
import { FormatRegistry, TypeRegistry } from '@sinclair/typebox'
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler'
import { PlexusError } from '../lib/errors.js'
import { lazy } from '../lib/lazy.js'
import { keyOwner } from './record.js'
import type { JsonValue, StoreRecord } from './types.js'

/** the value, or why the record is not one of its prefix's */
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string }

/** what decoding reads of a record: the writer is checked against the key's owner segment */
export type RecordInput = Pick<StoreRecord, 'key' | 'value' | 'owner'>

export interface RecordCodec<T> {
  readonly prefix: string
  /** the record's value, typed, or a reason: wrong prefix, wrong shape, key and value disagree, wrong writer */
  decode(rec: RecordInput): Decoded<T>
  /** decode() for readers that skip what does not decode (and count it themselves) */
  valueOf(rec: RecordInput): T | undefined
  /** the value as put() takes it; throws PLX_STORE_BAD_VALUE when it is not of this prefix's shape */
  encode(value: T): JsonValue
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/
// permissive shape check; the kernel-facing code never sees these, dns-packet encodes them
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/

// TypeBox's registries are global: the kinds and formats the record schemas use
// (lib/schema.ts StringEnum, `format`) are registered once, before the first compile
const registered = lazy(() => {
  if (!TypeRegistry.Has('StringEnum'))
    TypeRegistry.Set<{ enum: string[] }>('StringEnum', (s, v) => typeof v === 'string' && s.enum.includes(v))
  if (!FormatRegistry.Has('ipv4')) FormatRegistry.Set('ipv4', (v) => IPV4.test(v))
  if (!FormatRegistry.Has('ipv6')) FormatRegistry.Set('ipv6', (v) => IPV6.test(v))
  return true
})

/** schema compiled on the first call, once */
export function lazyCheck<S extends TSchema>(schema: S): () => TypeCheck<S> {
  return lazy(() => {
    registered()
    return TypeCompiler.Compile(schema)
  })
}

/** the first thing wrong with value, as "<path>: <message>" */
export function firstError(check: TypeCheck<TSchema>, value: unknown): string {
  const e = check.Errors(value).First()
  return e ? `${e.path || '/'}: ${e.message}` : 'invalid'
}

/** why a value of the right shape does not belong under its key (its name or ids disagree), or undefined */
export type Agrees<T> = (key: string, value: T) => string | undefined

/**
 * A codec for records under `prefix` whose values have the shape `schema`;
 * T is the value's TypeScript type (store/records.ts), which the schema checks.
 */
export function recordCodec<T>(prefix: string, schema: TSchema, agrees?: Agrees<T>): RecordCodec<T> {
  const check = lazyCheck(schema)
  const shape = (value: unknown): string | undefined =>
    check().Check(value) ? undefined : firstError(check(), value)
  const decode = (rec: RecordInput): Decoded<T> => {
    const why = (reason: string): Decoded<T> => ({ ok: false, reason: `${rec.key}: ${reason}` })
    if (!rec.key.startsWith(prefix)) return why(`not under ${prefix}`)
    const owner = keyOwner(rec.key)
    if (owner !== undefined && owner !== rec.owner)
      return why(`written by ${rec.owner}, not its owner ${owner}`)
    const bad = shape(rec.value)
    if (bad) return why(bad)
    const value = rec.value as unknown as T
    const disagrees = agrees?.(rec.key, value)
    return disagrees ? why(disagrees) : { ok: true, value }
  }
  return {
    prefix: prefix,
    decode,
    valueOf: (rec) => {
      const d = decode(rec)
      return d.ok ? d.value : undefined
    },
    encode: (value) => {
      const bad = shape(value)
      if (bad) throw new PlexusError('PLX_STORE_BAD_VALUE', `a ${prefix} value is malformed: ${bad}`)
      return value as unknown as JsonValue
    },
  }
}
