import { type Static, Type } from '@sinclair/typebox'

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
