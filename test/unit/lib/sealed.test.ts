// Sealed values: libsodium's crypto_box_seal (a box PyNaCl 1.6.2, i.e. libsodium,
// made opens here; that PyNaCl opens ours was checked by hand once, not here),
// round trips, the wrong key, an altered box or envelope; and the key files' checks.

import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { generateKeyFiles, readSecretKeyFile, resolvePublicKey } from '../../../src/cli/seal-keys.js'
import {
  fingerprint,
  formatPublicKey,
  generateKeyPair,
  open,
  openValue,
  parseEnvelope,
  parsePublicKey,
  publicKeyOf,
  type SealedEnvelope,
  seal,
  sealValue,
} from '../../../src/lib/sealed.js'

const codeOf = (f: () => unknown) => {
  try {
    f()
    return 'no error'
  } catch (e) {
    return (e as { code?: string }).code ?? String(e)
  }
}

t.test('opens what libsodium sealed (crypto_box_seal)', async (t) => {
  // from PyNaCl: SealedBox(PrivateKey(bytes(range(32))).public_key).encrypt(b'"libsodium sealed this"')
  const sk = new Uint8Array(32).map((_, i) => i)
  t.equal(Buffer.from(publicKeyOf(sk)).toString('base64'), 'j0DFrbaPJWJK5bIU6nZ6bslNgp09e14a0bpvPiE4KF8=')
  const box = Buffer.from(
    '0+HC7ixC2/B5bOjFkbwj8ZIEO3V4gtPYkcuZzJxO+wSVohKVKCCtJ8IUy90uQtC+YBZAYNIwg59ICxXfC1buVHCzeJ2mKY8=',
    'base64',
  )
  t.equal(Buffer.from(open(box, sk)).toString(), '"libsodium sealed this"')
  const env: SealedEnvelope = {
    sealed: 1,
    alg: 'x25519-xsalsa20poly1305-sealedbox',
    to: fingerprint(publicKeyOf(sk)),
    box: box.toString('base64'),
  }
  t.equal(openValue(env, sk), 'libsodium sealed this')
})

t.test('round trip, fresh ciphertext each time', async (t) => {
  const k = generateKeyPair()
  const value = { user: 'app', password: 'hunter2', n: [1, 2, 3] }
  const a = sealValue(value, k.publicKey)
  const b = sealValue(value, k.publicKey)
  t.not(a.box, b.box, 'an ephemeral key per seal')
  t.notMatch(JSON.stringify(a), /hunter2/)
  t.equal(a.to, fingerprint(k.publicKey))
  t.same(openValue(a, k.secretKey), value)
  t.same(openValue(JSON.parse(JSON.stringify(b)), k.secretKey), value, 'through JSON as stored')
  t.equal(openValue(sealValue('', k.publicKey), k.secretKey), '', 'an empty string')
  const raw = seal(new TextEncoder().encode('abc'), k.publicKey)
  t.equal(raw.length, 32 + 16 + 3, 'ephemeral key, tag, ciphertext: no padding')
  t.equal(Buffer.from(open(raw, k.secretKey)).toString(), 'abc')
})

t.test('the wrong key is an error, never garbage', async (t) => {
  const k = generateKeyPair()
  const other = generateKeyPair()
  const env = sealValue('secret', k.publicKey)
  t.equal(
    codeOf(() => openValue(env, other.secretKey)),
    'PLX_SEAL_WRONG_KEY',
  )
  t.throws(() => openValue(env, other.secretKey), /sealed to key SHA256:/)
  // a forged "to" gets past the fingerprint check, not past the box's MAC
  const forged = { ...env, to: fingerprint(other.publicKey) }
  t.equal(
    codeOf(() => openValue(forged, other.secretKey)),
    'PLX_SEAL_OPEN_FAILED',
  )
})

t.test('an altered box does not open', async (t) => {
  const k = generateKeyPair()
  const env = sealValue({ a: 1 }, k.publicKey)
  const box = Buffer.from(env.box, 'base64')
  for (const at of [0, 31, 32, 47, 48, box.length - 1]) {
    const bad = Buffer.from(box)
    bad[at] = (bad[at] as number) ^ 1
    t.equal(
      codeOf(() => openValue({ ...env, box: bad.toString('base64') }, k.secretKey)),
      'PLX_SEAL_OPEN_FAILED',
      `bit flipped at byte ${at}`,
    )
  }
  t.equal(
    codeOf(() => openValue({ ...env, box: box.subarray(0, 40).toString('base64') }, k.secretKey)),
    'PLX_SEAL_OPEN_FAILED',
    'truncated',
  )
  t.equal(
    codeOf(() => open(box.subarray(0, -1), k.secretKey)),
    'PLX_SEAL_OPEN_FAILED',
  )
})

t.test('envelope shape', async (t) => {
  const k = generateKeyPair()
  const env = sealValue(1, k.publicKey)
  t.same(parseEnvelope(env), env)
  for (const [why, v] of [
    ['a string', 'x'],
    ['null', null],
    ['an array', [env]],
    ['no sealed field', { alg: env.alg, to: env.to, box: env.box }],
    ['version 2', { ...env, sealed: 2 }],
    ['another algorithm', { ...env, alg: 'rsa' }],
    ['a bad fingerprint', { ...env, to: 'abc' }],
    ['box not base64', { ...env, box: 'not base64!' }],
    ['box not a string', { ...env, box: 5 }],
    ['an extra field', { ...env, plain: 'x' }],
  ] as const)
    t.equal(
      codeOf(() => openValue(v, k.secretKey)),
      'PLX_SEAL_BAD_ENVELOPE',
      why,
    )
})

t.test('key files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-seal-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const r = await generateKeyFiles(dir, 'app')
  t.equal((await stat(r.secretFile)).mode & 0o777, 0o600, 'private key 0600')
  t.equal(await readFile(r.publicFile, 'utf8'), r.publicText)
  const pub = parsePublicKey(r.publicText)
  t.equal(fingerprint(pub), r.fingerprint)
  const sk = await readSecretKeyFile(r.secretFile)
  t.same(publicKeyOf(sk), pub, 'the pair belongs together')

  await t.rejects(generateKeyFiles(dir, 'app'), { code: 'PLX_SEAL_KEY_EXISTS' }, 'never overwritten')
  t.equal(await readFile(r.publicFile, 'utf8'), r.publicText, 'the old key is kept')
  await t.rejects(generateKeyFiles(dir, '../x'), { code: 'PLX_SEAL_BAD_NAME' })

  // by name in the key dir, by file, by its text
  t.same(await resolvePublicKey('app', dir), pub)
  t.same(await resolvePublicKey(r.publicFile, dir), pub)
  t.same(await resolvePublicKey(formatPublicKey(pub), dir), pub)
  await t.rejects(resolvePublicKey('nobody', dir), { code: 'PLX_SEAL_NO_KEY' })
  await t.rejects(resolvePublicKey(r.secretFile, dir), { code: 'PLX_SEAL_BAD_KEY' })

  await chmod(r.secretFile, 0o640)
  await t.rejects(readSecretKeyFile(r.secretFile), { code: 'PLX_SEAL_KEY_PERMS' }, 'group-readable')
  await chmod(r.secretFile, 0o604)
  await t.rejects(readSecretKeyFile(r.secretFile), { code: 'PLX_SEAL_KEY_PERMS' }, 'world-readable')
  const junk = join(dir, 'junk.key')
  await writeFile(junk, 'plexus-seal-secret:AAAA\n', { mode: 0o600 })
  await t.rejects(readSecretKeyFile(junk), { code: 'PLX_SEAL_BAD_KEY' }, 'too short')
  await t.rejects(readSecretKeyFile(r.publicFile + '.x'), { code: 'PLX_SEAL_NO_KEY' })
})
