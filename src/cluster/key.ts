import { readFile } from 'node:fs/promises'
import { generateKey } from '@libp2p/pnet'
import { PlexusError } from '../lib/errors.js'

// The cluster key: a libp2p private-network pre-shared key in its v1 text form
// (three lines). `plexctl cluster init` makes one; every host loads the same.

const KEY_RE = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n?$/

/** A new key in the text form `plexctl cluster init` prints (the pnet v1 format). */
export function newClusterKey(): string {
  const buf = new Uint8Array(95)
  generateKey(buf)
  return `${new TextDecoder().decode(buf)}\n`
}

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

/** The key from config.cluster.key or keyFile (exactly one is required). */
export async function loadClusterKey(cfg: { key?: string; keyFile?: string }): Promise<Uint8Array> {
  if (cfg.key && cfg.keyFile)
    throw new PlexusError('PLX_CLUSTER_BAD_KEY', 'set cluster.key or cluster.keyFile, not both')
  if (cfg.key) return parseClusterKey(cfg.key, 'cluster.key')
  if (cfg.keyFile) {
    let text: string
    try {
      text = await readFile(cfg.keyFile, 'utf8')
    } catch (err) {
      throw new PlexusError(
        'PLX_CLUSTER_BAD_KEY',
        `cluster.keyFile ${cfg.keyFile}: ${(err as Error).message}`,
      )
    }
    return parseClusterKey(text, cfg.keyFile)
  }
  throw new PlexusError(
    'PLX_CLUSTER_NO_KEY',
    'no cluster key: run `plexctl cluster init --out FILE` once and give every host cluster.keyFile',
  )
}
