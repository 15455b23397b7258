import { type Static, Type } from '@sinclair/typebox'
import { AclDefaultRecord, AclPolicyRecord, AclTokenRecord, Label } from '../../store/schemas.js'

/** PUT /v1/acl/policies/<name> and what GET returns: the record itself (its name must be the path's) */
export const AclPolicy = AclPolicyRecord
export type AclPolicy = Static<typeof AclPolicy>
export const AclPolicies = Type.Array(AclPolicy)

/** GET and PUT /v1/acl/default */
export const AclDefault = AclDefaultRecord
export type AclDefault = Static<typeof AclDefault>

/** POST /v1/acl/tokens: a new token carrying these policies */
export const AclTokenBody = Type.Object(
  { name: Label, policies: Type.Array(Label, { minItems: 1, maxItems: 64, uniqueItems: true }) },
  { additionalProperties: false },
)
export type AclTokenBody = Static<typeof AclTokenBody>

/** a token as listed: never its secret */
export const AclToken = AclTokenRecord
export type AclToken = Static<typeof AclToken>
export const AclTokens = Type.Array(AclToken)

/** the reply to POST /v1/acl/tokens: the secret, shown this once (the store keeps only its hash) */
export const AclTokenCreated = Type.Composite([AclTokenRecord, Type.Object({ secret: Type.String() })])
export type AclTokenCreated = Static<typeof AclTokenCreated>
