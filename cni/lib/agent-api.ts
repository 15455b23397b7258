// What the plugin sends plexusd and what it answers: the API contract's types
// (src/api/contract/cni.ts, TypeBox schemas the agent validates with). Types
// only: `import type` is erased, so the plugin's bundle carries none of it and
// its start-up does not change.
import type { Attachment } from '../../src/api/contract/cni.js'

export type {
  Attachment,
  AttachReply,
  AttachRequest,
  CheckRequest,
  CniErrorBody,
  DetachRequest,
  GcRequest,
  NetnsHandle,
  PortMapping,
} from '../../src/api/contract/cni.js'
export type { PortSpec } from '../../src/store/schemas.js'

/**
 * A DEL the agent could not take (not running): the plugin leaves one of
 * these in <socket's folder>/cni-spool/ and the agent finishes the DEL when it
 * starts. `at` (ms since the epoch) keeps it from touching an attachment made
 * after it.
 */
export interface SpoolRecord extends Attachment {
  version: 1
  netns: string
  at: number
}

/** The spool sits next to the socket the plugin was told to use: the agent drains the folder of each socket it serves. */
export function spoolDirOf(socket: string): string {
  return `${socket.slice(0, socket.lastIndexOf('/')) || ''}/cni-spool`
}
