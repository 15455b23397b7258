// The application API's access policies, managed on the operator API only
// (the unix socket): policies under acl/policies/<name>, the default under
// acl/default. Rules and their meaning: src/services/README.md.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import { aclDefaultCodec, aclPolicyCodec } from '../../store/codecs.js'
import { ACL_DEFAULT_KEY, ACL_POLICY_PREFIX } from '../../store/types.js'
import { AclDefault, AclPolicies, AclPolicy } from '../contract/acl.js'
import { ErrorBody, NameParam, NoContent } from '../contract/common.js'
import type { ApiDeps } from '../deps.js'

/** what the /v1/acl routes read (registered with that prefix) */
export type AclComponents = Pick<ApiDeps, 'store'>

export const aclRoutes: FastifyPluginAsyncTypebox<AclComponents> = async (app, { store }) => {
  app.get('/policies', { schema: { response: { 200: AclPolicies } } }, async () =>
    store.list(ACL_POLICY_PREFIX).flatMap((r) => aclPolicyCodec.valueOf(r) ?? []),
  )

  app.get(
    '/policies/:name',
    { schema: { params: NameParam, response: { 200: AclPolicy, 404: ErrorBody } } },
    async (req) => {
      const r = store.get(`${ACL_POLICY_PREFIX}${req.params.name}`)
      const v = r && aclPolicyCodec.valueOf(r)
      if (!v) throw new PlexusError('PLX_ACL_NOT_FOUND', `no policy "${req.params.name}"`, { status: 404 })
      return v
    },
  )

  app.put(
    '/policies/:name',
    { schema: { params: NameParam, body: AclPolicy, response: { 200: AclPolicy } } },
    async (req) => {
      if (req.body.name !== req.params.name)
        throw new PlexusError(
          'PLX_API_BAD_REQUEST',
          `the policy is named "${req.body.name}", the path says "${req.params.name}"`,
        )
      await store.put(`${ACL_POLICY_PREFIX}${req.params.name}`, aclPolicyCodec.encode(req.body))
      return req.body
    },
  )

  app.delete(
    '/policies/:name',
    { schema: { params: NameParam, response: { 204: NoContent, 404: ErrorBody } } },
    async (req, reply) => {
      if (!(await store.delete(`${ACL_POLICY_PREFIX}${req.params.name}`)))
        throw new PlexusError('PLX_ACL_NOT_FOUND', `no policy "${req.params.name}"`, { status: 404 })
      return reply.code(204).send(null)
    },
  )

  app.get('/default', { schema: { response: { 200: AclDefault } } }, async () => {
    const r = store.get(ACL_DEFAULT_KEY)
    return (r && aclDefaultCodec.valueOf(r)) || { policy: 'allow' as const }
  })

  app.put('/default', { schema: { body: AclDefault, response: { 200: AclDefault } } }, async (req) => {
    await store.put(ACL_DEFAULT_KEY, aclDefaultCodec.encode(req.body))
    return req.body
  })
}
