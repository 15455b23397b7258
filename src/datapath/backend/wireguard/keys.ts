// This host's WireGuard key pair: the private key in the state dir (0600, in
// `wg genkey` format: base64 of the 32-byte X25519 scalar), the public key
// derived from it. Node's crypto makes and derives X25519 keys itself, so no
// `wg` binary is run for this.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { WG_KEY_RE } from '../../../ipam/leases.js'
import { PlexusError } from '../../../lib/errors.js'
import { writeFileAtomic } from '../../../lib/fs.js'

export const KEY_FILE = 'wireguard.key'
/** PKCS#8 wrapping of a raw X25519 private key (RFC 8410): this prefix, then the 32 bytes */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export interface WgKeys {
  /** base64 */
  privateKey: string
  /** base64 */
  publicKey: string
}

const b64 = (b64url: string) => Buffer.from(b64url, 'base64url').toString('base64')

function fromKeyObject(key: KeyObject): WgKeys {
  const jwk = key.export({ format: 'jwk' })
  return { privateKey: b64(jwk.d as string), publicKey: b64(jwk.x as string) }
}

/** The pair of a base64 private key; PLX_WG_KEY_INVALID when it is not one. */
export function keysOf(privateKey: string): WgKeys {
  if (!WG_KEY_RE.test(privateKey))
    throw new PlexusError('PLX_WG_KEY_INVALID', 'a WireGuard private key is base64 of 32 bytes')
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')])
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  return { privateKey, publicKey: b64(createPublicKey(key).export({ format: 'jwk' }).x as string) }
}

export function generateKeys(): WgKeys {
  return fromKeyObject(generateKeyPairSync('x25519').privateKey)
}

/**
 * Reads the key from `<stateDir>/wireguard.key`, or makes one and writes it
 * (0600, written atomically: a crash never leaves half a key). A file that
 * holds no key is an error (PLX_WG_KEY_INVALID), not replaced: peers know the old key.
 */
export async function loadOrCreateKeys(stateDir: string): Promise<WgKeys> {
  const file = join(stateDir, KEY_FILE)
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text !== undefined) {
    try {
      return keysOf(text.trim())
    } catch (err) {
      throw new PlexusError('PLX_WG_KEY_INVALID', `${file} holds no WireGuard private key`, { cause: err })
    }
  }
  return writeKeys(stateDir, generateKeys())
}

/** Stores a key pair as this host's (also for rotation). */
export async function writeKeys(stateDir: string, keys: WgKeys): Promise<WgKeys> {
  await writeFileAtomic(join(stateDir, KEY_FILE), `${keys.privateKey}\n`, 0o600)
  return keys
}
