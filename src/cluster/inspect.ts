// The inspect protocol (/plexus/inspect/1): one agent asks another a
// read-only question about its kernel state (for plexctl trace and doctor).
// The cluster carries JSON both ways and knows nothing of the questions:
// src/diag registers the handler and validates what it receives. Only
// cluster members may ask: a connection already needs the cluster key
// (protector.ts), and the asker must also have a heartbeat record in the
// store, so a peer that holds the key but never joined is refused.
import { PlexusError } from '../lib/errors.js'

export const INSPECT_PROTOCOL = '/plexus/inspect/1'
/** a question or an answer: a trace hop's facts are a few KiB */
export const MAX_INSPECT_BYTES = 1024 * 1024
/** how long the answering side may take before the stream is dropped */
export const INSPECT_SERVE_TIMEOUT_MS = 5000

/** answers one question from a member (`from` is its peer id); throws to refuse */
export type InspectHandler = (from: string, question: unknown) => Promise<unknown>

export interface Inspector {
  /** sets the handler (one per agent: src/diag) */
  serve(handler: InspectHandler): void
  /** asks a member; rejects with PLX_INSPECT_TIMEOUT after timeoutMs, PLX_INSPECT_FAILED otherwise */
  ask(peer: string, question: unknown, timeoutMs: number): Promise<unknown>
}

export function encodeInspect(v: unknown): Uint8Array {
  const b = Buffer.from(JSON.stringify(v), 'utf8')
  if (b.length > MAX_INSPECT_BYTES)
    throw new PlexusError('PLX_INSPECT_TOO_LARGE', `inspect message of ${b.length} bytes is over the cap`)
  return b
}

export function decodeInspect(data: Uint8Array): unknown {
  if (data.length > MAX_INSPECT_BYTES)
    throw new PlexusError('PLX_INSPECT_TOO_LARGE', `inspect message of ${data.length} bytes is over the cap`)
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'))
  } catch {
    throw new PlexusError('PLX_INSPECT_BAD_MESSAGE', 'inspect message is not JSON')
  }
}

/** an answer carries either the handler's result or its refusal */
export type InspectAnswer = { ok: true; result: unknown } | { ok: false; code: string; message: string }
