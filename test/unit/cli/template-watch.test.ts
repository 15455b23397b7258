// plexctl template's watch of a prefix (src/cli/template/watch.ts) against a
// real agent API over a unix socket: the first catch-up is not a change, live
// changes are, and a lost stream resumes from its last index so changes made
// while it was away still count (and nothing before them is sent again).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../../src/api/app.js'
import { listenUnix } from '../../../src/api/server.js'
import { createClient } from '../../../src/cli/client.js'
import { watchPrefix } from '../../../src/cli/template/watch.js'
import { testComponents } from '../../helpers/components.js'
import { eventually } from '../../helpers/fixture.js'

t.test('a watch resumes from its last index after the stream is lost', async (t) => {
  const { deps, store } = await testComponents()
  const app = await buildApp(deps)
  const dir = await mkdtemp(join(tmpdir(), 'plx-tplwatch-'))
  const socketPath = join(dir, 'api.sock')
  let close = await listenUnix(app, [socketPath])
  t.teardown(async () => {
    stop.abort()
    await close()
    await app.close()
    await rm(dir, { recursive: true, force: true })
  })
  await store.put('config/web/a', 1)
  await store.put('config/other', 1)

  const stop = new AbortController()
  let synced = 0
  let changes = 0
  const logs: string[] = []
  const done = watchPrefix(createClient(socketPath), 'config/web/', stop.signal, {
    onSynced: () => synced++,
    onChange: () => changes++,
    log: (m) => logs.push(m),
  })
  t.ok(await eventually(() => synced === 1, 5000, 20), 'caught up')
  t.equal(changes, 0, 'what was there before is the first state, not a change')
  await store.put('config/web/a', 2)
  await store.put('config/other', 2)
  t.ok(await eventually(() => changes === 1, 5000, 20), 'a live change under the prefix')

  await close()
  await store.put('config/web/b', 1)
  await store.delete('config/web/a')
  t.ok(await eventually(() => logs.length > 0, 5000, 20), logs.join('; '))
  t.match(logs[0], /watch of "config\/web\/" lost .*resuming after index \d+/)
  close = await listenUnix(app, [socketPath])
  t.ok(await eventually(() => changes === 3, 10_000, 20), `the two changes made while away: ${changes}`)
  t.equal(synced, 1, 'onSynced only for the first catch-up')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(changes, 3, 'nothing seen before the loss is sent again')
  await store.put('config/web/c', 1)
  t.ok(await eventually(() => changes === 4, 5000, 20), 'live again')
  stop.abort()
  await done
})

t.test('the first connection failing is an error: a template that cannot watch does not start', async (t) => {
  const stop = new AbortController()
  await t.rejects(
    watchPrefix(createClient('/nonexistent/plexusd.sock'), 'config/', stop.signal, {
      onSynced: () => undefined,
      onChange: () => undefined,
      log: () => undefined,
    }),
    /cannot reach plexusd/,
  )
})
