import { randomBytes } from 'node:crypto'
import { PlexusError } from './errors.js'

// The cluster key's text form, shared by `plexctl cluster init` (which makes
// one without an agent) and the agent (which loads it): libp2p's private-network
// pre-shared key, v1 format, three lines. Here, on the ground floor, so the CLI
// does not load cluster code to print 32 random bytes.

const KEY_RE = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n?$/

/** A new key in the text form `plexctl cluster init` prints. */
export function newClusterKey(): string {
  return `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`
}

/** The key's bytes as the protector takes them (the whole text, trimmed); refuses anything else. */
export function parseClusterKey(text: string, source: string): Uint8Array {
  const t = text.trim().replace(/\r\n/g, '\n')
  if (!KEY_RE.test(t)) {
    throw new PlexusError(
      'PLX_CLUSTER_BAD_KEY',
      `${source}: not a cluster key (expected the 3-line text from \`plexctl cluster init\`)`,
    )
  }
  return new TextEncoder().encode(t)
}
