// Sealed values (issue 14 item 4, as crypt does): a KV value encrypted on the
// client to a reader's X25519 public key, so agents, stores, disks and gossip
// only ever carry ciphertext. The box is libsodium's crypto_box_seal, byte for
// byte: an ephemeral key pair per value, nonce = BLAKE2b-192(epk ‖ pk), key =
// HSalsa20(X25519(esk, pk), 0), XSalsa20-Poly1305; the box is epk ‖ tag ‖
// ciphertext. Any libsodium binding (PyNaCl's SealedBox, Go's
// box.SealAnonymous) opens what we seal and the other way round. Built from
// @noble/curves, @noble/ciphers and @noble/hashes (audited by Cure53, pure JS,
// already in the tree under libp2p) rather than a new construction of our own.
import { createHash } from 'node:crypto'
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { swap32IfBE, u32 } from '@noble/ciphers/utils.js'
import { x25519 } from '@noble/curves/ed25519.js'
import { blake2b } from '@noble/hashes/blake2.js'
import { PlexusError } from './errors.js'

export const SEAL_ALG = 'x25519-xsalsa20poly1305-sealedbox'
const KEY_LEN = 32
const TAG_LEN = 16
const PUBLIC_PREFIX = 'plexus-seal-public:'
const SECRET_PREFIX = 'plexus-seal-secret:'

/** What a sealed value is stored as: self-describing, so a reader knows it is sealed and to which key. */
export interface SealedEnvelope {
  sealed: 1
  alg: typeof SEAL_ALG
  /** the fingerprint of the public key it is sealed to */
  to: string
  /** base64 of the crypto_box_seal output */
  box: string
}

export interface SealKeyPair {
  publicKey: Uint8Array
  secretKey: Uint8Array
}

export function generateKeyPair(): SealKeyPair {
  const { secretKey, publicKey } = x25519.keygen()
  return { secretKey, publicKey }
}

export const publicKeyOf = (secretKey: Uint8Array): Uint8Array => x25519.getPublicKey(secretKey)

/** A short name for a public key: the first 16 bytes of its SHA-256, base64url (as ssh's SHA256: form). */
export const fingerprint = (publicKey: Uint8Array): string =>
  `SHA256:${createHash('sha256').update(publicKey).digest().subarray(0, 16).toString('base64url')}`

// The key files' text: one line, a prefix naming what it is, the 32 bytes base64.
export const formatPublicKey = (k: Uint8Array): string =>
  `${PUBLIC_PREFIX}${Buffer.from(k).toString('base64')}\n`
export const formatSecretKey = (k: Uint8Array): string =>
  `${SECRET_PREFIX}${Buffer.from(k).toString('base64')}\n`

function parseKey(text: string, prefix: string, what: string): Uint8Array {
  const t = text.trim()
  const b64 = t.startsWith(prefix) ? t.slice(prefix.length) : undefined
  const bytes = b64 !== undefined && /^[A-Za-z0-9+/]{43}=$/.test(b64) ? Buffer.from(b64, 'base64') : undefined
  if (bytes?.length !== KEY_LEN)
    throw new PlexusError(
      'PLX_SEAL_BAD_KEY',
      `not a ${what} key: expected one line "${prefix}<32 bytes base64>"`,
    )
  return new Uint8Array(bytes)
}
export const parsePublicKey = (text: string) => parseKey(text, PUBLIC_PREFIX, 'sealing public')
export const parseSecretKey = (text: string) => parseKey(text, SECRET_PREFIX, 'sealing private')
export const looksLikePublicKey = (text: string) => text.trim().startsWith(PUBLIC_PREFIX)

/** crypto_box_beforenm: HSalsa20 of the shared point with a zero input, as NaCl's box key. */
function boxKey(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const shared = x25519.getSharedSecret(secretKey, publicKey)
  const sigma = swap32IfBE(u32(new TextEncoder().encode('expand 32-byte k')))
  const out = new Uint32Array(8)
  hsalsa(sigma, swap32IfBE(u32(shared.slice())), new Uint32Array(4), out)
  return new Uint8Array(swap32IfBE(out).buffer)
}

const sealNonce = (epk: Uint8Array, pk: Uint8Array) => blake2b(Buffer.concat([epk, pk]), { dkLen: 24 })

/** crypto_box_seal */
export function seal(plaintext: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const eph = generateKeyPair()
  const c = xsalsa20poly1305(boxKey(eph.secretKey, publicKey), sealNonce(eph.publicKey, publicKey)).encrypt(
    plaintext,
  )
  eph.secretKey.fill(0)
  return new Uint8Array(Buffer.concat([eph.publicKey, c]))
}

/** crypto_box_seal_open; PLX_SEAL_OPEN_FAILED when the box was not sealed to this key or was altered */
export function open(box: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (box.length < KEY_LEN + TAG_LEN)
    throw new PlexusError('PLX_SEAL_OPEN_FAILED', `sealed box too short (${box.length} bytes)`)
  const epk = box.subarray(0, KEY_LEN)
  try {
    return xsalsa20poly1305(boxKey(secretKey, epk), sealNonce(epk, publicKeyOf(secretKey))).decrypt(
      box.subarray(KEY_LEN),
    )
  } catch {
    throw new PlexusError(
      'PLX_SEAL_OPEN_FAILED',
      'the sealed box does not open with this key: sealed to another key, or altered',
    )
  }
}

/** Seal a KV value (any JSON) to a public key; opening gives the same JSON back. */
export function sealValue(value: unknown, publicKey: Uint8Array): SealedEnvelope {
  const box = seal(new TextEncoder().encode(JSON.stringify(value)), publicKey)
  return { sealed: 1, alg: SEAL_ALG, to: fingerprint(publicKey), box: Buffer.from(box).toString('base64') }
}

/** Whether a stored value claims to be sealed (then parseEnvelope says whether it is well formed). */
export const isSealed = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && 'sealed' in v

export function parseEnvelope(v: unknown): SealedEnvelope {
  const bad = (why: string) => new PlexusError('PLX_SEAL_BAD_ENVELOPE', `not a sealed value: ${why}`)
  if (!isSealed(v)) throw bad('no "sealed" field')
  const e = v as Record<string, unknown>
  const extra = Object.keys(e).filter((k) => !['sealed', 'alg', 'to', 'box'].includes(k))
  if (extra.length) throw bad(`unknown field(s) ${extra.join(', ')}`)
  if (e.sealed !== 1) throw bad(`version ${JSON.stringify(e.sealed)} (this plexctl knows 1)`)
  if (e.alg !== SEAL_ALG) throw bad(`algorithm ${JSON.stringify(e.alg)} (this plexctl knows ${SEAL_ALG})`)
  if (typeof e.to !== 'string' || !/^SHA256:[A-Za-z0-9_-]{22}$/.test(e.to))
    throw bad('"to" is not a key fingerprint')
  if (typeof e.box !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(e.box) || e.box.length % 4)
    throw bad('"box" is not base64')
  return e as unknown as SealedEnvelope
}

/** Open a stored sealed value: PLX_SEAL_WRONG_KEY names both keys when it was sealed to another. */
export function openValue(v: unknown, secretKey: Uint8Array): unknown {
  const env = parseEnvelope(v)
  const mine = fingerprint(publicKeyOf(secretKey))
  if (env.to !== mine)
    throw new PlexusError('PLX_SEAL_WRONG_KEY', `sealed to key ${env.to}; this private key is ${mine}`)
  const plain = open(Buffer.from(env.box, 'base64'), secretKey)
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain))
  } catch {
    throw new PlexusError('PLX_SEAL_BAD_ENVELOPE', 'the opened value is not JSON')
  }
}
