// The application API's access checks, per request: the app API's identity
// hook builds the caller's ACL (src/services/acl.ts) and attaches it here;
// the shared routes (KV, watch, catalog, registration) ask before they act.
// A request of the operator API carries no ACL and is never refused here
// (the unix socket is root's, with full access).
import type { FastifyRequest } from 'fastify'
import { PlexusError } from '../lib/errors.js'
import { type Acl, type AclRequest, decide, mayReadSomeUnder } from '../services/acl.js'

interface Guard {
  acl: Acl
  /** counts a refusal by the kind of request */
  denied: (kind: AclRequest['kind']) => void
}

const guards = new WeakMap<FastifyRequest, Guard>()

export function setAcl(req: FastifyRequest, acl: Acl, denied: Guard['denied']): void {
  guards.set(req, { acl, denied })
}

function refuse(g: Guard, req: AclRequest, what: string, rule: string): never {
  g.denied(req.kind)
  throw new PlexusError('PLX_ACL_DENIED', `${what}: denied by ${rule}`, { status: 403 })
}

const describe = (r: AclRequest): string =>
  r.kind === 'kv'
    ? `${r.op} of key "${r.key}"`
    : r.kind === 'service'
      ? `${r.op} of service "${r.name}"`
      : `operator ${r.op}`

/** Throws 403 PLX_ACL_DENIED naming the rule when the caller may not do this. */
export function authorize(req: FastifyRequest, request: AclRequest): void {
  const g = guards.get(req)
  if (!g) return
  const d = decide(g.acl, request)
  if (!d.allow) refuse(g, request, describe(request), d.rule)
}

/**
 * For a listing or a watch of `prefix`: 403 when nothing under it may be read,
 * else the test a key must pass to be shown (records a more specific rule
 * hides are left out, as Consul's listings do).
 */
export function readableUnder(req: FastifyRequest, prefix: string): (key: string) => boolean {
  const g = guards.get(req)
  if (!g) return () => true
  const request: AclRequest = { kind: 'kv', op: 'read', key: prefix }
  const d = mayReadSomeUnder(g.acl, prefix)
  if (!d.allow) refuse(g, request, `read under "${prefix}"`, d.rule)
  return (key) => decide(g.acl, { kind: 'kv', op: 'read', key }).allow
}

/** The test a service name must pass to be listed (discover). */
export function discoverable(req: FastifyRequest): (name: string) => boolean {
  const g = guards.get(req)
  if (!g) return () => true
  return (name) => decide(g.acl, { kind: 'service', op: 'discover', name }).allow
}

/** The test a key must pass to be written (a recursive delete skips the others). */
export function writable(req: FastifyRequest): (key: string) => boolean {
  const g = guards.get(req)
  if (!g) return () => true
  return (key) => decide(g.acl, { kind: 'kv', op: 'write', key }).allow
}
