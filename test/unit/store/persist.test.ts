import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { createSigner, loadOrCreatePeerKey, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { sleep } from '../../../src/lib/proc.js'
import { journalFile, loadSnapshot, SNAPSHOT_FILE, StoreJournal } from '../../../src/store/persist.js'
import { StoreService } from '../../../src/store/service.js'
import { LocalStore, type RecordSigner } from '../../../src/store/store.js'
import { newStore } from './helpers.js'

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

/** A store on dir's files, as StoreService opens it, with the journal started. */
async function openJournaled(dir: string, signer: RecordSigner, minCompactBytes?: number) {
  const loaded = await loadSnapshot(dir, logger)
  const store = new LocalStore({ signer, verify: verifyRecordSignature }, loaded.snapshot)
  const journal = new StoreJournal(store, dir, loaded.generation, logger, { minCompactBytes })
  await journal.start()
  return { store, journal }
}

const journals = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.journal')).sort()

t.test('writes reach the journal without a snapshot rewrite and come back after a crash', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const signer = createSigner(await loadOrCreatePeerKey(dir))
  const { store, journal } = await openJournaled(dir, signer)
  const snapshotBefore = await readFile(join(dir, SNAPSHOT_FILE), 'utf8')
  await store.put('app/a', 1)
  await store.put('app/b', { deep: [1, 2] })
  await journal.flush()
  await store.delete('app/a')
  await store.put('app/c', 'x', { ttlMs: 60_000 })
  await journal.flush()
  t.equal(await readFile(join(dir, SNAPSHOT_FILE), 'utf8'), snapshotBefore, 'the snapshot was not rewritten')
  t.same(await journals(dir), [journalFile(1)], 'one journal, of the generation the start wrote')
  // the debounce timer may take part of a burst before an explicit flush: two to four lines
  const lines = (await readFile(join(dir, journalFile(1)), 'utf8')).trimEnd().split('\n')
  t.ok(lines.length >= 2 && lines.length <= 4, `a line per burst, none per record (${lines.length})`)

  // a crash: no stop(); the next start reads the snapshot plus the journal
  const back = await openJournaled(dir, signer)
  t.equal(back.store.get('app/a'), undefined, 'the delete came back')
  t.same(back.store.get('app/b')?.value, { deep: [1, 2] })
  t.equal(back.store.get('app/c')?.ttlMs, 60_000)
  t.equal(back.store.index, store.index, 'modify index restored')
  t.equal(back.store.modifyIndex('app/b'), store.modifyIndex('app/b'))
  t.same(back.store.digest(), store.digest(), 'own watermark restored')
  const gen = (JSON.parse(await readFile(join(dir, SNAPSHOT_FILE), 'utf8')) as { generation: number })
    .generation
  t.equal(gen, 2, 'the start folded the journal into a new snapshot generation')
  t.same(await journals(dir), [], 'and removed the journal it folded')
  await back.journal.stop()
})

t.test(
  'records of other hosts wait for the replica window; a write of our own brings it forward',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'plexus-store-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const signer = createSigner(await loadOrCreatePeerKey(dir))
    const loaded = await loadSnapshot(dir, logger)
    const store = new LocalStore({ signer, verify: verifyRecordSignature }, loaded.snapshot)
    const journal = new StoreJournal(store, dir, loaded.generation, logger, {
      delayMs: 10,
      replicaDelayMs: 60_000,
    })
    await journal.start()
    t.teardown(() => journal.stop())
    const lines = async () =>
      (await readFile(join(dir, journalFile(1)), 'utf8').catch(() => '')).split('\n').filter(Boolean).length

    const peer = await newStore()
    const theirs = await peer.store.put('app/theirs', 1)
    t.equal(store.merge([theirs]).accepted.length, 1, 'merged a record another host wrote')
    await sleep(200)
    t.equal(await lines(), 0, 'not appended within 200 ms: the replica window is 60 s here')
    await store.put('app/ours', 2)
    await sleep(200)
    t.equal(await lines(), 1, 'our own write was appended within its 10 ms window, in one line with theirs')
    const back = await loadSnapshot(dir, logger)
    t.same(
      back.snapshot?.entries.map((e) => e.record.key).sort(),
      ['app/ours', 'app/theirs'],
      'both are in the journal a crash would replay',
    )
  },
)

t.test(
  'a torn last journal line (crash mid-append) is dropped; a damaged one inside is moved aside',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'plexus-store-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const signer = createSigner(await loadOrCreatePeerKey(dir))
    const { store, journal } = await openJournaled(dir, signer)
    await store.put('app/a', 1)
    await journal.flush()
    await appendFile(join(dir, journalFile(1)), '{"c":{"wall":1,"log')
    const torn = await openJournaled(dir, signer)
    t.same(torn.store.get('app/a')?.value, 1, 'everything before the torn line is back')
    await torn.store.put('app/b', 2)
    await torn.journal.flush()

    await writeFile(join(dir, journalFile(2)), 'not json\n{"c":{"wall":1,"logical":0},"i":1,"e":[],"r":[]}\n')
    const damaged = await openJournaled(dir, signer)
    t.equal(damaged.store.index, 0, 'started empty: peers resupply')
    const names = await readdir(dir)
    t.ok(
      names.some((f) => f.startsWith(`${journalFile(2)}.corrupt-`)),
      'the journal was moved aside',
    )
    t.ok(
      names.some((f) => f.startsWith(`${SNAPSHOT_FILE}.corrupt-`)),
      'and the snapshot it continued',
    )
    t.same(await journals(dir), [], 'no journal is left to be taken for the new generation')
    await damaged.store.put('app/c', 3)
    await damaged.journal.stop()
    t.same((await openJournaled(dir, signer)).store.get('app/c')?.value, 3, 'the new generation journals')
  },
)

t.test('a grown journal is compacted into the next snapshot generation', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const signer = createSigner(await loadOrCreatePeerKey(dir))
  const { store, journal } = await openJournaled(dir, signer, 1)
  for (let i = 0; i < 5; i++) {
    await store.put(`app/${i}`, i)
    await journal.flush()
  }
  const snap = JSON.parse(await readFile(join(dir, SNAPSHOT_FILE), 'utf8')) as { generation: number }
  t.ok(snap.generation >= 2, `compacted after the start (generation ${snap.generation})`)
  t.same(
    (await journals(dir)).filter((f) => f !== journalFile(snap.generation)),
    [],
    'only the current generation has a journal',
  )
  await journal.stop()
  const back = await openJournaled(dir, signer)
  t.same(
    back.store.list('app/').map((r) => r.value),
    [0, 1, 2, 3, 4],
  )
  await back.journal.stop()
})
