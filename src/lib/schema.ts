// TypeBox helpers shared by every schema: the store's record codecs
// (src/store/schemas.ts) and the API contract (src/api/contract/).
import { Kind, type Static, type TSchema, Type } from '@sinclair/typebox'

/** a label key: Kubernetes' name part (letters, digits, '.', '_', '/', '-'; alphanumeric at both ends) */
export const LABEL_KEY = '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$'

/**
 * schema or null, as one JSON Schema type list (`{"type": ["string", "null"]}`)
 * rather than TypeBox's anyOf: fastify's ajv coerces types (coerceTypes), and in
 * an anyOf it turns a null into "" through the string branch before the null
 * branch is tried (a label set to null, meaning "remove", became "").
 */
export function Nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] })
}

/**
 * one of the given strings, as a JSON Schema enum (TypeBox's own union of
 * literals is an anyOf of consts); its own kind, so TypeBox's compiler checks
 * it too (src/store/codec.ts registers the check)
 */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { description?: string } = {},
) {
  return Type.Unsafe<T[number]>({ [Kind]: 'StringEnum', type: 'string', enum: [...values], ...options })
}
