// This host's WireGuard key pair: the private key in the state dir (0600, in
// `wg genkey` format: base64 of the 32-byte X25519 scalar), the public key
// derived from it. Node's crypto makes and derives X25519 keys itself, so no
// `wg` binary is run for this.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { WG_KEY_RE } from '../../../ipam/leases.js'
import { PlexusError } from '../../../lib/errors.js'
import { writeFileAtomic } from '../../../lib/fs.js'
import type { WgIdentity } from '../../model.js'

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

/** the file's text, trimmed; undefined when there is no such file */
async function readIfThere(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** the pair held in `file`, undefined when there is no such file; PLX_WG_KEY_INVALID when it holds no key */
async function readKeys(file: string): Promise<WgKeys | undefined> {
  const text = await readIfThere(file)
  if (text === undefined) return undefined
  try {
    return keysOf(text)
  } catch (err) {
    throw new PlexusError('PLX_WG_KEY_INVALID', `${file} holds no WireGuard private key`, { cause: err })
  }
}

/** 0600, written atomically: a crash never leaves half a key */
async function writeKeys(file: string, keys: WgKeys): Promise<WgKeys> {
  await writeFileAtomic(file, `${keys.privateKey}\n`, 0o600)
  return keys
}

/**
 * Reads the key from `<stateDir>/wireguard.key`, or makes one and writes it
 * (`created`). A file that holds no key is an error (PLX_WG_KEY_INVALID), not
 * replaced: peers know the old key.
 */
export async function loadOrCreateKeys(stateDir: string): Promise<{ keys: WgKeys; created: boolean }> {
  const keys = await readKeys(join(stateDir, KEY_FILE))
  if (keys) return { keys, created: false }
  return { keys: await writeKeys(join(stateDir, KEY_FILE), generateKeys()), created: true }
}

/** the key a rotation announced and takes next, present from phase 1 until phase 2 makes it wireguard.key */
const NEXT_KEY_FILE = 'wireguard.key.next'
/** the newest rotation generation (config/wireguard-rotation) this host took up, a decimal number */
const GENERATION_FILE = 'wireguard.generation'

/**
 * This host's keys as the state dir holds them: the key, and the rotation's
 * state beside it (rotation.ts), so a crash or a restart resumes a rotation
 * rather than starting it again: the key announced next, and the newest
 * generation taken up. Every change is written before it is used or told.
 */
export class HostKeys {
  private loading?: Promise<void>
  private current?: WgKeys
  private next?: WgKeys
  private taken?: number
  private created = false

  constructor(private readonly stateDir: string) {}

  private file(name: string): string {
    return join(this.stateDir, name)
  }

  /** the key pair in use, read from (or made in) the state dir on first use with the rotation's state */
  async load(): Promise<WgKeys> {
    // once, also when two callers ask at the same time (two reads could make two different keys)
    this.loading ??= this.read().catch((err: unknown) => {
      this.loading = undefined
      throw err
    })
    await this.loading
    return this.current as WgKeys
  }

  private async read(): Promise<void> {
    const { keys, created } = await loadOrCreateKeys(this.stateDir)
    this.next = await readKeys(this.file(NEXT_KEY_FILE))
    this.taken = await this.readGeneration()
    this.created = created
    this.current = keys
  }

  /** undefined when none was written; PLX_WG_STATE_INVALID when the file holds no generation */
  private async readGeneration(): Promise<number | undefined> {
    const file = this.file(GENERATION_FILE)
    const text = await readIfThere(file)
    if (text === undefined) return undefined
    if (!/^\d{1,15}$/.test(text)) throw new PlexusError('PLX_WG_STATE_INVALID', `${file} holds no generation`)
    return Number(text)
  }

  get publicKey(): string | undefined {
    return this.current?.publicKey
  }

  get nextPublicKey(): string | undefined {
    return this.next?.publicKey
  }

  /** the keys this host publishes (and refuses from others) */
  identity(): WgIdentity {
    return {
      ...(this.current ? { wgPublicKey: this.current.publicKey } : {}),
      ...(this.next ? { wgNextPublicKey: this.next.publicKey } : {}),
    }
  }

  /**
   * The newest rotation generation this host took up. With no record of one, a key this agent has just
   * made is as new as any request (undefined: the caller records the current one), and a key from
   * before rotation existed is of generation 0.
   */
  get generation(): number | undefined {
    return this.taken ?? (this.created ? undefined : 0)
  }

  async setGeneration(generation: number): Promise<void> {
    await writeFileAtomic(this.file(GENERATION_FILE), `${generation}\n`, 0o600)
    this.taken = generation
  }

  /** phase 1: makes the next key pair and stores it (0600, atomically) before anyone is told of it */
  async announceNext(): Promise<WgKeys> {
    this.next = await writeKeys(this.file(NEXT_KEY_FILE), generateKeys())
    return this.next
  }

  /**
   * Phase 2: the next key becomes this host's, for `generation`. The generation is written first and the
   * key renamed second: a crash between them leaves the next key, and the start resumes phase 1 and 2.
   */
  async takeNext(generation: number): Promise<WgKeys> {
    const next = this.next
    if (!next) throw new PlexusError('PLX_WG_STATE_INVALID', 'no next key to take')
    await this.setGeneration(generation)
    await rename(this.file(NEXT_KEY_FILE), this.file(KEY_FILE))
    this.current = next
    this.next = undefined
    return next
  }
}
