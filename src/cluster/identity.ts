import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import { mkdir, open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { PlexusError } from '../lib/errors.js'
import type { RecordSigner, RecordVerifier } from '../store/store.js'

// The host identity is its libp2p Ed25519 key: the peer id embeds the public
// key, so a record's owner field is all a verifier needs.

export const PEER_KEY_FILE = 'peer.key'

/** Loads <stateDir>/peer.key, creating it (mode 0600, never overwritten) on first start. */
export async function loadOrCreatePeerKey(stateDir: string): Promise<Ed25519PrivateKey> {
  const file = join(stateDir, PEER_KEY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes) {
    const key = privateKeyFromProtobuf(bytes)
    if (key.type !== 'Ed25519') throw new PlexusError('PLX_CLUSTER_BAD_KEY', `${file}: not an Ed25519 key`)
    return key
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  // wx: a concurrent second agent on the same state dir fails instead of replacing the identity
  const fh = await open(file, 'wx', 0o600)
  try {
    await fh.writeFile(privateKeyToProtobuf(key))
    await fh.sync()
  } finally {
    await fh.close()
  }
  return key
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url')

/** the key as node:crypto holds it: built once, not on every signature */
function keyObjectOf(key: Ed25519PrivateKey): KeyObject {
  return createPrivateKey({
    format: 'jwk',
    key: { kty: 'OKP', crv: 'Ed25519', d: b64url(key.raw.subarray(0, 32)), x: b64url(key.publicKey.raw) },
  })
}

/** Signs canonical record text with the host key (node:crypto, synchronous). */
export function createSigner(key: Ed25519PrivateKey): RecordSigner {
  const keyObject = keyObjectOf(key)
  const self = peerIdFromPrivateKey(key).toString()
  return { self, sign: (text) => sign(null, Buffer.from(text), keyObject).toString('base64') }
}

/**
 * The host key as libp2p takes it, signing with a KeyObject built once.
 * @libp2p/crypto 5's Ed25519 key imports itself from JWK on every signature.
 * Gossipsub signed each message it published until topic 2 (at 50,000 records
 * that import was 9 % of a loaded agent's CPU, bench/converge's size run
 * profile); what libp2p signs now is the noise handshake of each connection
 * and identify's peer record, which bench/conn-soak opens 10,000 of.
 */
export function withKeptKeyObject(key: Ed25519PrivateKey): Ed25519PrivateKey {
  const keyObject = keyObjectOf(key)
  const kept: Ed25519PrivateKey = Object.create(Object.getPrototypeOf(key))
  return Object.assign(kept, key, {
    sign: (message: Uint8Array | { subarray(): Uint8Array }) =>
      sign(null, message instanceof Uint8Array ? message : message.subarray(), keyObject),
  })
}

const CACHE_MAX = 100_000
/**
 * Verdicts kept, oldest dropped first. Every heartbeat (one a second per host)
 * is a new entry, so the cache is full in a steady state: this bound is its
 * size. 16,384 covers every record in flight at once (a 10-host cluster
 * writes ~10 a second; the simulator's 1,000 hosts check each record within
 * ~0.2 simulated seconds of one another).
 */
export const VERIFIED_MAX = 16_384
/** sha256 of signature + text -> verdict (a 44-byte key, not the ~1 KB record text) */
const verified = new Map<string, boolean>()
const publicKeys = new Map<string, KeyObject | null>()

function publicKeyOf(owner: string): KeyObject | null {
  let k = publicKeys.get(owner)
  if (k !== undefined) return k
  try {
    const pid = peerIdFromString(owner)
    k =
      pid.type === 'Ed25519' && pid.publicKey
        ? createPublicKey({
            format: 'jwk',
            key: { kty: 'OKP', crv: 'Ed25519', x: b64url(pid.publicKey.raw) },
          })
        : null
  } catch {
    k = null
  }
  if (publicKeys.size >= CACHE_MAX) publicKeys.clear()
  publicKeys.set(owner, k)
  return k
}

/**
 * Verifies that `owner` signed `text`. Pure, so results are cached keyed on
 * signature + text (the text names the owner): a record relayed by many peers,
 * or held by many simulated hosts, is checked once. The key is their digest:
 * keyed on the text itself the cache held ~1 KB per heartbeat ever seen, up to
 * 100,000 of them (~100 MB; 2.3 MB in a 42-minute 2-host soak, issue 22).
 */
export const verifyRecordSignature: RecordVerifier = (owner, text, sig) => {
  const cacheKey = createHash('sha256').update(sig).update('\n').update(text).digest('base64')
  const hit = verified.get(cacheKey)
  if (hit !== undefined) return hit
  const pub = publicKeyOf(owner)
  let ok = false
  if (pub) {
    try {
      ok = verify(null, Buffer.from(text), pub, Buffer.from(sig, 'base64'))
    } catch {
      ok = false
    }
  }
  // oldest entries go first; Map keeps insertion order
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string)
  verified.set(cacheKey, ok)
  return ok
}

/** how many verdicts the signature cache holds (tests) */
export const verifiedCacheSize = () => verified.size
