// WireGuard key rotation: the pure step, the key files across restarts and
// crashes, and one host's two phases driven by the request record.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { HostKeys } from '../../../src/datapath/backend/wireguard/keys.js'
import { KeyRotation, nextRotation, rotationStep } from '../../../src/datapath/backend/wireguard/rotation.js'
import { LocalStore } from '../../../src/store/store.js'

async function stateDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-wg-rot-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('step: a stored next key is finished; otherwise only a newer generation starts one', async (t) => {
  t.equal(rotationStep(0, 0, false), 'none')
  t.equal(rotationStep(2, 2, false), 'none')
  t.equal(rotationStep(1, 2, false), 'none', 'an older request (a stale store snapshot) is not served again')
  t.equal(rotationStep(3, 2, false), 'begin')
  t.equal(rotationStep(2, 2, true), 'resume', 'a crash between the phases')
  t.same(nextRotation(undefined, 5), { generation: 1, requestedAt: 5 })
  t.same(nextRotation({ generation: 4, requestedAt: 1 }, 5), { generation: 5, requestedAt: 5 })
})

t.test('key files: announced, taken, and each state found again by a restart', async (t) => {
  const dir = await stateDir(t)
  const keys = new HostKeys(dir)
  const first = await keys.load()
  t.equal(keys.generation, undefined, 'a key made now has no generation until the caller records one')
  await keys.setGeneration(3)
  t.same(keys.identity(), { wgPublicKey: first.publicKey })

  const next = await keys.announceNext()
  t.equal((await stat(join(dir, 'wireguard.key.next'))).mode & 0o777, 0o600)
  t.same(keys.identity(), { wgPublicKey: first.publicKey, wgNextPublicKey: next.publicKey })
  const restarted = new HostKeys(dir)
  t.same(await restarted.load(), first, 'a restart in phase 1 still uses the current key')
  t.equal(restarted.nextPublicKey, next.publicKey, '… and finds the next one')
  t.equal(restarted.generation, 3)

  await restarted.takeNext(4)
  t.equal((await readFile(join(dir, 'wireguard.key'), 'utf8')).trim(), next.privateKey)
  await t.rejects(stat(join(dir, 'wireguard.key.next')), { code: 'ENOENT' })
  const after = new HostKeys(dir)
  t.same(await after.load(), next)
  t.same([after.generation, after.nextPublicKey], [4, undefined])
  await t.rejects(after.takeNext(5), { code: 'PLX_WG_STATE_INVALID' }, 'nothing announced, nothing taken')

  await writeFile(join(dir, 'wireguard.generation'), 'x\n')
  await t.rejects(new HostKeys(dir).load(), { code: 'PLX_WG_STATE_INVALID' })
  await rm(join(dir, 'wireguard.generation'))
  const old = new HostKeys(dir)
  await old.load()
  t.equal(
    old.generation,
    0,
    'a key from before rotation existed, with no generation file, is of generation 0',
  )
})

t.test(
  'one host: announce, settle, take; a restart neither rotates again nor loses a rotation',
  async (t) => {
    const dir = await stateDir(t)
    const store = new LocalStore({
      signer: createSigner(await generateKeyPair('Ed25519')),
      verify: verifyRecordSignature,
    })
    const published: (string | undefined)[][] = []
    let rotations = 0
    const host = (keys: HostKeys) => {
      const r = new KeyRotation({
        keys,
        store,
        settleMs: 50,
        logger: pino({ level: 'silent' }),
        active: () => true,
        publish: async () => {
          const id = keys.identity()
          published.push([id.wgPublicKey, id.wgNextPublicKey])
        },
        rotated: () => rotations++,
      })
      t.teardown(() => r.stop())
      return r
    }
    const settled = () => new Promise((r) => setTimeout(r, 150))
    const request = (generation: number) =>
      store.put('config/wireguard-rotation', { generation, requestedAt: Date.now() })

    await request(2)
    let keys = new HostKeys(dir)
    await host(keys).check()
    t.same([keys.generation, published.length], [2, 0], 'a key made now serves the requests made before it')
    const k0 = keys.publicKey

    await request(3)
    let rot = host(keys)
    await rot.check()
    const k1 = keys.nextPublicKey
    t.ok(k1, 'phase 1: a next key')
    t.same(published, [[k0, k1]], 'announced beside the current key')
    await rot.check()
    t.equal(published.length, 1, 'a check while phase 1 settles changes nothing')
    await settled()
    t.same(published.at(-1), [k1, undefined], 'phase 2: the next key alone')
    t.same([keys.publicKey, keys.generation, rotations], [k1, 3, 1])

    keys = new HostKeys(dir)
    await host(keys).check()
    t.same([keys.publicKey, rotations, published.length], [k1, 1, 2], 'a restart does not rotate again')

    // a crash in phase 1 (the agent stops before the settle time is over): the next start finishes it
    await request(4)
    rot = host(keys)
    await rot.check()
    const k2 = keys.nextPublicKey
    rot.stop()
    await settled()
    t.equal(rotations, 1, 'a stopped host takes no key')
    keys = new HostKeys(dir)
    await host(keys).check()
    t.same(published.at(-1), [k1, k2], 'the start announces the same next key again')
    await settled()
    t.same([keys.publicKey, keys.generation, rotations], [k2, 4, 2])
  },
)
