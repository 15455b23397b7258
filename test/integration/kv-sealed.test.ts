// Issue 14 item 4 acceptance: a value put with --seal-to is ciphertext
// everywhere the cluster keeps it: no file under any host's state directory
// (snapshot, journal, keys: every file, recursively) and no KV record any
// host's API returns holds the plaintext; the key holder opens it on another
// host, a wrong key fails with its code, and re-sealing moves it to a new key.
// A plain value put alongside *is* found in every host's files and records,
// so the scan is shown to see what the store keeps (the test would fail for a
// plain put).

import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadCluster } from '../../netns-fixtures/lib/state.js'
import type { KvEntry } from '../../src/api/contract/kv.js'
import { eventually, upCluster } from '../helpers/fixture.js'

t.setTimeout(600_000)

const HOSTS = ['h1', 'h2', 'h3']

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name)
    if (d.isDirectory()) return filesUnder(p)
    return d.isFile() ? [p] : [] // sockets and fifos hold no data
  })
}

/** the files under a host's directory whose bytes contain `needle` */
const filesHolding = (dir: string, needle: string) =>
  filesUnder(dir).filter((f) => readFileSync(f).includes(needle))

t.test('sealed KV values: ciphertext on every host, opened by the key holder', async (t) => {
  const c = upCluster(t, { hosts: 3, prefix: 'seal' })
  const keys = mkdtempSync(join(tmpdir(), 'plx-seal-'))
  t.teardown(() => rmSync(keys, { recursive: true, force: true }))
  /** `plexctl kv get --unseal KEYS/NAME.key KEY` on a host */
  const unseal = (host: string, name: string, key: string) =>
    c.exec(host, ['plexctl', 'kv', 'get', '--unseal', join(keys, `${name}.key`), key])
  const secret = `s3cret-${Date.now()}-sealed`
  const plain = `pla1n-${Date.now()}-control`

  const gen = c.exec('h1', ['plexctl', 'keys', 'gen', 'app', '--dir', keys])
  t.equal(gen.status, 0, `keys gen: ${gen.stderr}`)
  t.match(gen.stdout, /^plexus-seal-public:[A-Za-z0-9+/]{43}=\n$/, 'prints the public key')
  t.equal(statSync(join(keys, 'app.key')).mode & 0o777, 0o600)
  t.equal(c.exec('h1', ['plexctl', 'keys', 'gen', 'app', '--dir', keys]).status, 1, 'no overwrite')
  t.equal(c.exec('h1', ['plexctl', 'keys', 'gen', 'other', '--dir', keys]).status, 0)

  const put = c.exec('h1', [
    'plexctl',
    'kv',
    'put',
    '--seal-to',
    join(keys, 'app.pub'),
    'config/db/password',
    secret,
  ])
  t.equal(put.status, 0, `kv put --seal-to: ${put.stderr}`)
  t.equal(c.exec('h1', ['plexctl', 'kv', 'put', 'config/db/user', plain]).status, 0)

  const everywhere = await eventually(
    () =>
      HOSTS.every((h) => {
        const all = c.plexctlJson<KvEntry[]>(h, ['kv', 'get', '-r', 'config/db/'])
        return all.length === 2
      }),
    30_000,
  )
  t.ok(everywhere, 'both values reached every host')

  const state = loadCluster(c.name)
  if (!state) throw new Error('no fixture state')
  for (const h of state.hosts) {
    const records = JSON.stringify(c.plexctlJson<KvEntry[]>(h.name, ['kv', 'get', '-r', '']))
    t.notOk(records.includes(secret), `${h.name}: no KV record holds the plaintext`)
    t.ok(records.includes(plain), `${h.name}: the records are all there (the plain control is)`)
    const sealed = c.plexctlJson<KvEntry>(h.name, ['kv', 'get', 'config/db/password']).value
    t.match(sealed, { sealed: 1, alg: 'x25519-xsalsa20poly1305-sealedbox', to: /^SHA256:/ })
    // the store writes its journal within 10 ms of a change; the control shows the files are current
    const plainIn = await eventually(() => filesHolding(h.dir, plain).length > 0, 10_000)
    t.ok(plainIn, `${h.name}: the plain control is in its state files (the scan sees stored values)`)
    t.same(filesHolding(h.dir, secret), [], `${h.name}: no file under ${h.dir} holds the plaintext`)
  }

  const get = unseal('h2', 'app', 'config/db/password')
  t.equal(get.status, 0, `kv get --unseal on h2: ${get.stderr}`)
  t.equal(get.stdout, `${secret}\n`, 'the key holder reads the plaintext on another host')

  const wrong = unseal('h3', 'other', 'config/db/password')
  t.equal(wrong.status, 1, 'a wrong key fails')
  t.match(wrong.stderr, /PLX_SEAL_WRONG_KEY/)
  t.equal(wrong.stdout, '', 'and prints nothing')

  const notSealed = unseal('h3', 'app', 'config/db/user')
  t.equal(notSealed.status, 1)
  t.match(notSealed.stderr, /PLX_SEAL_NOT_SEALED/)

  chmodSync(join(keys, 'app.key'), 0o644)
  const open = unseal('h2', 'app', 'config/db/password')
  t.equal(open.status, 1, 'a world-readable private key is refused')
  t.match(open.stderr, /PLX_SEAL_KEY_PERMS/)
  chmodSync(join(keys, 'app.key'), 0o600)

  // rotation: re-sealed to "other" on h3, opened with it on h1; the old key no longer opens it
  const reseal = c.exec('h3', [
    ...['plexctl', 'kv', 'reseal', '--unseal', join(keys, 'app.key')],
    ...['--seal-to', join(keys, 'other.pub'), 'config/db/password'],
  ])
  t.equal(reseal.status, 0, `kv reseal: ${reseal.stderr}`)
  const rotated = await eventually(() => {
    const r = unseal('h1', 'other', 'config/db/password')
    return r.status === 0 ? r.stdout : undefined
  }, 30_000)
  t.equal(rotated, `${secret}\n`, 'the new key opens it on h1')
  const old = unseal('h1', 'app', 'config/db/password')
  t.match(old.stderr, /PLX_SEAL_WRONG_KEY/, 'the old key does not')
  for (const h of state.hosts)
    t.same(filesHolding(h.dir, secret), [], `${h.name}: still no plaintext on disk after the rotation`)
})
