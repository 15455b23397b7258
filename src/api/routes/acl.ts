// Access policies and tokens, managed on the unix socket only (the TCP
// listener refuses /v1/acl): policies under acl/policies/<name>, the default
// under acl/default, tokens under acl/tokens/<sha256 of the secret>. Rules and
// their meaning: src/services/README.md.
import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PlexusError } from '../../lib/errors.js'
import { aclRecords } from '../../services/acl.js'
import { aclDefaultCodec, aclPolicyCodec, aclTokenCodec } from '../../store/codecs.js'
import { ACL_DEFAULT_KEY, ACL_POLICY_PREFIX, ACL_TOKEN_PREFIX } from '../../store/types.js'
import {
  AclDefault,
  AclPolicies,
  AclPolicy,
  AclTokenBody,
  AclTokenCreated,
  AclTokens,
} from '../contract/acl.js'
import { ErrorBody, NameParam, NoContent } from '../contract/common.js'
import type { ApiDeps } from '../deps.js'
import { tokenKey } from '../tcp-listener.js'

/** what the /v1/acl routes read (registered with that prefix) */
export type AclComponents = Pick<ApiDeps, 'store'>

export const aclRoutes: FastifyPluginAsyncTypebox<AclComponents> = async (app, { store }) => {
  app.get('/policies', { schema: { response: { 200: AclPolicies } } }, async () => aclRecords(store).policies)

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

  const tokens = () =>
    store.list(ACL_TOKEN_PREFIX).flatMap((r) => {
      const v = aclTokenCodec.valueOf(r)
      return v ? [{ key: r.key, value: v }] : []
    })

  app.get('/tokens', { schema: { response: { 200: AclTokens } } }, async () => tokens().map((t) => t.value))

  app.post(
    '/tokens',
    { schema: { body: AclTokenBody, response: { 200: AclTokenCreated, 409: ErrorBody } } },
    async (req) => {
      if (tokens().some((t) => t.value.name === req.body.name))
        throw new PlexusError('PLX_ACL_EXISTS', `a token named "${req.body.name}" exists`, { status: 409 })
      const secret = `plx_${randomBytes(32).toString('base64url')}`
      const value = { ...req.body, createdAt: new Date().toISOString() }
      await store.put(tokenKey(secret), aclTokenCodec.encode(value))
      return { ...value, secret }
    },
  )

  app.delete(
    '/tokens/:name',
    { schema: { params: NameParam, response: { 204: NoContent, 404: ErrorBody } } },
    async (req, reply) => {
      const t = tokens().find((x) => x.value.name === req.params.name)
      if (!t) throw new PlexusError('PLX_ACL_NOT_FOUND', `no token "${req.params.name}"`, { status: 404 })
      await store.delete(t.key)
      return reply.code(204).send(null)
    },
  )

  app.get('/default', { schema: { response: { 200: AclDefault } } }, async () => ({
    policy: aclRecords(store).defaultPolicy,
  }))

  app.put('/default', { schema: { body: AclDefault, response: { 200: AclDefault } } }, async (req) => {
    await store.put(ACL_DEFAULT_KEY, aclDefaultCodec.encode(req.body))
    return req.body
  })
}
