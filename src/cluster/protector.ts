import type { ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { byteStream } from '@libp2p/utils'
import { PlexusError } from '../lib/errors.js'

// Cluster membership is gated by a pre-shared key (libp2p private network,
// XSalsa20 over the raw TCP stream). pnet alone only fails later, inside
// multistream-select, with a garbled-protocol error that names nothing; so
// right after the pnet nonce exchange both sides send a fixed magic through
// the encrypted stream and compare. A different key decrypts to garbage, and
// both sides refuse the connection in protect(), where we can log and count it.

const MAGIC = new TextEncoder().encode('plexus-cluster/1')
const CHECK_TIMEOUT_MS = 5000

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
