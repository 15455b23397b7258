import { type Static, Type } from '@sinclair/typebox'
import { AclDefaultRecord, AclPolicyRecord } from '../../store/schemas.js'

/** PUT /v1/acl/policies/<name> and what GET returns: the record itself (its name must be the path's) */
export const AclPolicy = AclPolicyRecord
export type AclPolicy = Static<typeof AclPolicy>
export const AclPolicies = Type.Array(AclPolicy)

/** GET and PUT /v1/acl/default */
export const AclDefault = AclDefaultRecord
export type AclDefault = Static<typeof AclDefault>
