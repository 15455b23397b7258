// Pieces every resource's contract uses: the error body, path parameters,
// Consul-style flags and durations in query strings.
import { type Static, Type } from '@sinclair/typebox'
import { StringEnum } from '../../lib/schema.js'

/** every error reply (src/api/errors.ts): a stable PLX_ code and a bounded message */
export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() })
export type ErrorBody = Static<typeof ErrorBody>

/** `:name` of a named object (a DNS label): services, jobs */
export const NameParam = Type.Object({ name: Type.String({ maxLength: 63 }) })

/** a Consul-style flag: a bare `?recurse` counts as true */
export const Flag = StringEnum(['', 'true', '1', 'false', '0'])
export const flag = (v: string | undefined) => v !== undefined && v !== 'false' && v !== '0'

/** "250ms", "30s", "5m", "1h" or plain milliseconds */
export const Duration = Type.String({ pattern: '^\\d+(ms|s|m|h)?$' })

/** a reply with no body (204) */
export const NoContent = Type.Null()
