// The sealing key files of `plexctl keys gen` and how `kv --seal-to/--unseal`
// find them. A private key readable by group or others is refused, as ssh
// refuses an unprotected identity file: a sealed value is only as secret as
// the one file that opens it.
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { PlexusError } from '../lib/errors.js'
import {
  fingerprint,
  formatPublicKey,
  formatSecretKey,
  generateKeyPair,
  looksLikePublicKey,
  parsePublicKey,
  parseSecretKey,
} from '../lib/sealed.js'

/** where `keys gen` writes and `--seal-to NAME` looks: $PLEXUS_KEY_DIR, else ~/.config/plexus/keys */
export const defaultKeyDir = (): string =>
  process.env.PLEXUS_KEY_DIR || join(homedir(), '.config', 'plexus', 'keys')

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** NAME.key (0600, never overwritten) and NAME.pub in dir; the public key's text and fingerprint */
export async function generateKeyFiles(
  dir: string,
  name: string,
): Promise<{ secretFile: string; publicFile: string; publicText: string; fingerprint: string }> {
  if (!NAME.test(name))
    throw new PlexusError('PLX_SEAL_BAD_NAME', `key name "${name}": letters, digits, . _ - (≤ 64)`)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const secretFile = join(dir, `${name}.key`)
  const publicFile = join(dir, `${name}.pub`)
  for (const f of [secretFile, publicFile])
    if (existsSync(f)) throw new PlexusError('PLX_SEAL_KEY_EXISTS', `${f} exists: not overwriting a key`)
  const k = generateKeyPair()
  // 'wx': a key file that appeared since the check is still not overwritten
  await writeFile(secretFile, formatSecretKey(k.secretKey), { mode: 0o600, flag: 'wx' })
  const publicText = formatPublicKey(k.publicKey)
  await writeFile(publicFile, publicText, { mode: 0o644, flag: 'wx' })
  k.secretKey.fill(0)
  return { secretFile, publicFile, publicText, fingerprint: fingerprint(k.publicKey) }
}

/**
 * `--seal-to`: the public key's own text, a file (a path with a slash, or
 * one that exists), or a NAME in the key directory (NAME.pub).
 */
export async function resolvePublicKey(spec: string, dir = defaultKeyDir()): Promise<Uint8Array> {
  if (looksLikePublicKey(spec)) return parsePublicKey(spec)
  const file = spec.includes('/') || existsSync(spec) ? spec : join(dir, `${spec}.pub`)
  if (!existsSync(file))
    throw new PlexusError(
      'PLX_SEAL_NO_KEY',
      `no public key "${spec}" (neither a file nor ${join(dir, `${spec}.pub`)})`,
    )
  return parsePublicKey(await readFile(file, 'utf8'))
}

/** `--unseal FILE`: a private key file, refused when group or others may read it */
export async function readSecretKeyFile(file: string): Promise<Uint8Array> {
  const st = await stat(file).catch(() => {
    throw new PlexusError('PLX_SEAL_NO_KEY', `no private key file ${file}`)
  })
  if (st.mode & 0o077)
    throw new PlexusError(
      'PLX_SEAL_KEY_PERMS',
      `${file} is accessible by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it; a private key must be yours alone`,
    )
  return parseSecretKey(await readFile(file, 'utf8'))
}
