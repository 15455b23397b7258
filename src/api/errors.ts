// The API's one error contract: every error body is
// `{"error": "PLX_…", "message": "…"}`. Fastify's own errors (FST_ERR_…:
// bad JSON, wrong content type, body too large, schema validation) are mapped
// here, once, so no fastify code reaches a client, and every message is
// bounded so a client's over-long input is never echoed back whole.
import type { FastifyError, FastifyInstance } from 'fastify'
import { excerpt, isPlexusError, PlexusError } from '../lib/errors.js'

/** fastify's codes → ours (status kept from fastify unless given) */
const FASTIFY_CODES: Record<string, { code: string; status?: number }> = {
  FST_ERR_VALIDATION: { code: 'PLX_API_BAD_REQUEST', status: 400 },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'PLX_API_BAD_JSON', status: 400 },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'PLX_API_BAD_JSON', status: 400 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'PLX_API_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'PLX_API_BAD_REQUEST', status: 400 },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PLX_API_TOO_LARGE', status: 413 },
  FST_ERR_BAD_URL: { code: 'PLX_API_BAD_REQUEST', status: 400 },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'PLX_API_BAD_REQUEST', status: 400 },
}

/** longest message a reply carries (a key is capped at 512 characters, a message says more than the key) */
export const MAX_MESSAGE = 1024

/**
 * Deepest JSON a request body may nest. Store values are signed and compared
 * through recursive walks; a body thousands of levels deep would overflow the
 * stack there (500) instead of being refused here (400). No record of ours
 * nests beyond a handful of levels.
 */
export const MAX_JSON_DEPTH = 64

/** Nesting depth of a JSON text, by one scan that skips strings (pure; no recursion, so any depth is safe). */
export function jsonDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth)
    else if (c === 0x5d || c === 0x7d) depth--
  }
  return max
}

/** the body of an error reply, and its status */
export function errorReply(err: unknown): { status: number; body: { error: string; message: string } } {
  if (isPlexusError(err)) {
    const s = (err.details as { status?: unknown } | undefined)?.status
    return {
      status: typeof s === 'number' ? s : 400,
      body: { error: err.code, message: excerpt(err.message, MAX_MESSAGE) },
    }
  }
  const e = err as Partial<FastifyError> & { message?: string }
  const mapped = e.validation ? FASTIFY_CODES.FST_ERR_VALIDATION : FASTIFY_CODES[e.code ?? '']
  const status =
    mapped?.status ?? (e.statusCode && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500)
  const code = mapped?.code ?? (status >= 500 ? 'PLX_API_INTERNAL' : 'PLX_API_BAD_REQUEST')
  return { status, body: { error: code, message: excerpt(String(e.message ?? err), MAX_MESSAGE) } }
}

/**
 * Installs the error and not-found handlers and a JSON body parser that
 * refuses bodies nested deeper than MAX_JSON_DEPTH (fastify's own parser
 * does the parsing, with its prototype-poisoning checks).
 */
export function installErrorContract(app: FastifyInstance, onInternal: (err: unknown) => void): void {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const depth = jsonDepth(body as string)
    if (depth > MAX_JSON_DEPTH) {
      done(
        new PlexusError('PLX_API_TOO_DEEP', `JSON nests ${depth} levels deep, at most ${MAX_JSON_DEPTH}`),
        undefined,
      )
      return
    }
    parseJson(req, body as string, done)
  })
  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = errorReply(err)
    if (status >= 500) onInternal(err)
    return reply.code(status).send(body)
  })
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ error: 'PLX_API_NOT_FOUND', message: `no route ${req.method} ${excerpt(req.url, 200)}` }),
  )
}
