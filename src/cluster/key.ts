import { readFile } from 'node:fs/promises'
import { parseClusterKey } from '../lib/cluster-key.js'
import { PlexusError } from '../lib/errors.js'

// The cluster key: its text form lives in src/lib/cluster-key.ts (the CLI makes
// keys too); here the agent loads it from its config.

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
