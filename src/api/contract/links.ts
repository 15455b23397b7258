// Docker-style links: the env a link gives, and links whose hosts entries the agent keeps current.
import { type Static, Type } from '@sinclair/typebox'
import { Nullable } from '../../lib/schema.js'

/** a container name or a link alias, as Docker allows them */
const LinkName = Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$' })

/** ALIAS_PORT_5432_TCP_ADDR=… and the rest, by name */
export const LinkEnv = Type.Record(Type.String(), Type.String())

/** GET /v1/links/env?container=&to=<target[:alias]> */
export const LinkEnvQuery = Type.Object(
  { container: LinkName, to: Type.String({ minLength: 1, maxLength: 130 }) },
  { additionalProperties: false },
)
export const LinkEnvReply = Type.Object({ env: LinkEnv })
export type LinkEnvReply = Static<typeof LinkEnvReply>

/** a link and the endpoint it points at now (null: no such container or healthy service endpoint yet) */
export const Link = Type.Object({
  container: LinkName,
  target: LinkName,
  alias: LinkName,
  /** the container's hosts file the agent keeps current */
  hostsFile: Type.Optional(Type.String()),
  resolved: Nullable(
    Type.Object({
      name: Type.String(),
      ipv4: Type.String(),
      host: Type.String(),
      ports: Type.Array(
        Type.Object({
          port: Type.Integer(),
          protocol: Type.String(),
          name: Type.Optional(Type.String()),
        }),
      ),
    }),
  ),
})
export type Link = Static<typeof Link>
export const LinksReply = Type.Array(Link)

/** `:container/:alias` of a link (DELETE: without the alias, every link of the container) */
export const LinkParams = Type.Object({ container: LinkName, alias: LinkName })
export const LinkDeleteParams = Type.Object({ container: LinkName, alias: Type.Optional(LinkName) })

/** PUT /v1/links/<container>/<alias> */
export const LinkBody = Type.Object(
  { target: LinkName, hostsFile: Type.Optional(Type.String({ pattern: '^/', maxLength: 4096 })) },
  { additionalProperties: false },
)
export const LinkAddReply = Type.Object({ link: Link, env: LinkEnv })
export type LinkAddReply = Static<typeof LinkAddReply>

export const LinkRemoveReply = Type.Object({ removed: Type.Integer() })
export type LinkRemoveReply = Static<typeof LinkRemoveReply>
