import { readFile } from 'node:fs/promises'
import type { ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { generateKey, preSharedKey } from '@libp2p/pnet'
import { byteStream } from '@libp2p/utils'
import { PlexusError } from '../lib/errors.js'

// Cluster membership is gated by a pre-shared key (libp2p private network,
// XSalsa20 over the raw TCP stream). pnet alone only fails later, inside
// multistream-select, with a garbled-protocol error that names nothing; so
// right after the pnet nonce exchange both sides send a fixed magic through
// the encrypted stream and compare. A different key decrypts to garbage, and
// both sides refuse the connection in protect(), where we can log and count it.

const KEY_RE = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n?$/
const MAGIC = new TextEncoder().encode('plexus-cluster/1')
const CHECK_TIMEOUT_MS = 5000

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

export type RefusedHandler = (remoteAddr: string, err: Error) => void

class CheckedProtector implements ConnectionProtector {
  constructor(
    private readonly inner: ConnectionProtector,
    private readonly onRefused: RefusedHandler,
  ) {}

  async protect(connection: MessageStream, options?: { signal?: AbortSignal }): Promise<MessageStream> {
    const remote = String((connection as Partial<MultiaddrConnection>).remoteAddr ?? 'unknown')
    const signal = options?.signal ?? AbortSignal.timeout(CHECK_TIMEOUT_MS)
    try {
      const boxed = await this.inner.protect(connection, { signal })
      const bytes = byteStream(boxed)
      const [got] = await Promise.all([
        bytes.read({ bytes: MAGIC.length, signal }),
        bytes.write(MAGIC, { signal }),
      ])
      const seen = got.subarray()
      if (!seen.every((b, i) => b === MAGIC[i])) {
        throw new PlexusError('PLX_CLUSTER_KEY_MISMATCH', `peer at ${remote} uses a different cluster key`)
      }
      return bytes.unwrap()
    } catch (err) {
      this.onRefused(remote, err as Error)
      connection.abort(err as Error)
      throw err
    }
  }
}

export function checkedPreSharedKey(psk: Uint8Array, onRefused: RefusedHandler): () => ConnectionProtector {
  const inner = preSharedKey({ psk })()
  return () => new CheckedProtector(inner, onRefused)
}
