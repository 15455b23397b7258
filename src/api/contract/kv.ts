import { type Static, Type } from '@sinclair/typebox'
import { Duration, Flag } from './common.js'

/** one KV record as GET /v1/kv/<key> and the watch stream show it */
export const KvEntry = Type.Object({
  key: Type.String(),
  /** any JSON value */
  value: Type.Unknown(),
  /** peer id of the host that wrote it */
  owner: Type.String(),
  version: Type.Object({ wall: Type.Integer(), logical: Type.Integer() }),
  ttlMs: Type.Optional(Type.Integer()),
  expiresAt: Type.Optional(Type.String()),
  /** this agent's store index at the record's last change (pass it back as ?index= or Last-Event-ID) */
  modifyIndex: Type.Integer(),
})
export type KvEntry = Static<typeof KvEntry>

/** the key: everything after /v1/kv/ */
export const KvKey = Type.Object({ '*': Type.String() })

/** GET /v1/kv/<key>[?recurse][&keys][&index=N&wait=30s] */
export const KvGetQuery = Type.Object(
  {
    recurse: Type.Optional(Flag),
    /** key names only (implies recurse) */
    keys: Type.Optional(Flag),
    /** block until something under the key changes past this index */
    index: Type.Optional(Type.Integer({ minimum: 0 })),
    wait: Type.Optional(Duration),
  },
  { additionalProperties: false },
)

/**
 * GET /v1/kv/<key> with `X-Plexus-Seal-Key: <private key>` (`plexctl keys gen`): the entry with its
 * sealed value opened, for an application that holds its key. The key is used for this request
 * only: never logged, never stored. plexctl opens values itself (`kv get --unseal`) and never sends it.
 */
export const KvGetHeaders = Type.Object({
  'x-plexus-seal-key': Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
})

/** one entry, the entries under a prefix (?recurse), or their keys (?keys) */
export const KvGetReply = Type.Union([KvEntry, Type.Array(KvEntry), Type.Array(Type.String())])
export type KvGetReply = Static<typeof KvGetReply>

/** PUT /v1/kv/<key>[?ttl=30s][&cas=N], body: any JSON value */
export const KvPutQuery = Type.Object(
  { ttl: Type.Optional(Duration), cas: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
)

/** the value: any JSON (content-type application/json) */
export const KvPutBody = Type.Unknown()

/** DELETE /v1/kv/<key>[?recurse][&cas=N] */
export const KvDeleteQuery = Type.Object(
  { recurse: Type.Optional(Flag), cas: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
)

/** how many records went; under a prefix, the keys other hosts own are skipped */
export const KvDeleteReply = Type.Object({
  deleted: Type.Integer(),
  skipped: Type.Array(Type.String()),
})
export type KvDeleteReply = Static<typeof KvDeleteReply>
