import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { createSigner, loadOrCreatePeerKey, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { SNAPSHOT_FILE } from '../../../src/store/persist.js'
import { StoreService } from '../../../src/store/service.js'

const logger = pino({ level: 'silent' })

t.test('peer key survives restarts and is 0600; store comes back from its snapshot', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const signer = createSigner(await loadOrCreatePeerKey(dir))
  t.equal((await stat(join(dir, 'peer.key'))).mode & 0o777, 0o600)
  const open = () => StoreService.open({ stateDir: dir, logger, signer, verify: verifyRecordSignature })
  const s1 = await open()
  await s1.start()
  await s1.store.put(`nodes/${signer.self}`, { name: 'h1' })
  await s1.store.put('app/x', 'y')
  await s1.stop()
  t.equal((await stat(join(dir, SNAPSHOT_FILE))).mode & 0o777, 0o600)

  const again = createSigner(await loadOrCreatePeerKey(dir))
  t.equal(again.self, signer.self, 'same peer id after restart')
  const s2 = await open()
  t.same(s2.store.get('app/x')?.value, 'y')
  t.equal(s2.store.get(`nodes/${signer.self}`)?.owner, signer.self)
})

t.test('a damaged snapshot is moved aside and the store starts empty', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, SNAPSHOT_FILE), '{"format":')
  const signer = createSigner(await loadOrCreatePeerKey(dir))
  const s = await StoreService.open({ stateDir: dir, logger, signer, verify: verifyRecordSignature })
  t.equal(s.store.index, 0)
  await t.rejects(readFile(join(dir, SNAPSHOT_FILE)), { code: 'ENOENT' })
})
