// The SSE watch (src/api/routes/watch.ts): what a reader is sent from
// scratch, on resume and after reaping (pure, over a real store), and the
// stream itself over a unix socket: live changes under the prefix only, in
// order, and a resumed stream that picks up exactly what it missed.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../../src/api/app.js'
import { catchUp } from '../../../src/api/routes/watch.js'
import { listenUnix } from '../../../src/api/server.js'
import { testComponents } from '../../helpers/components.js'
import { openSse, parseSse } from '../../helpers/sse.js'
import { newStore } from '../store/helpers.js'

const names = (texts: string[]) =>
  parseSse(texts.join('')).events.map(
    (e) => `${e.event} ${JSON.parse(e.data).key ?? JSON.parse(e.data).index}`,
  )

t.test('catch-up: from scratch, on resume, and after the missed changes were reaped', async (t) => {
  const { store, clock } = await newStore({ reapAfterMs: 10_000 })
  await store.put('cfg/a', 1)
  await store.put('cfg/gone', 2)
  await store.delete('cfg/gone')
  await store.put('other/x', 3)
  const n = store.index
  t.same(
    names(catchUp(store, 'cfg/', 0)),
    ['put cfg/a', `synced ${n}`],
    'from scratch: live records, no deletes',
  )
  const mark = store.index
  await store.put('cfg/b', 4)
  await store.delete('cfg/a')
  const m = store.index
  t.same(
    names(catchUp(store, 'cfg/', mark)),
    ['put cfg/b', 'delete cfg/a', `synced ${m}`],
    'resume: what was missed',
  )
  const ids = parseSse(catchUp(store, 'cfg/', mark).join('')).events.map((e) => Number(e.id))
  t.same(
    ids,
    [...ids].sort((a, b) => a - b),
    'ids rise, so Last-Event-ID of any event is a valid resume point',
  )
  clock.t += 10_001
  store.sweep()
  t.same(
    names(catchUp(store, 'cfg/', mark)),
    [`reset ${mark}`, 'put cfg/b', `synced ${store.index}`],
    'the delete of cfg/a was reaped: reset, then the whole live prefix',
  )
})

t.test('stream: live changes under the prefix, resumable with Last-Event-ID', async (t) => {
  const { deps, store } = await testComponents()
  const app = await buildApp(deps)
  const dir = await mkdtemp(join(tmpdir(), 'plx-watch-'))
  const socketPath = join(dir, 'api.sock')
  const close = await listenUnix(app, [socketPath])
  t.teardown(async () => {
    await close()
    await app.close()
    await rm(dir, { recursive: true, force: true })
  })
  await store.put('app/web/a', 'before')
  const s = await openSse({ socketPath, path: '/v1/watch/app/web/' })
  t.teardown(() => s.close())
  t.equal(s.status, 200)
  t.match(s.headers['content-type'], /^text\/event-stream/)
  t.equal(JSON.parse((await s.next((e) => e.event === 'put')).data).value, 'before', 'current state first')
  await s.next((e) => e.event === 'synced')
  await store.put('app/other', 'not watched')
  await store.put('app/web/b', 'live')
  const live = await s.next()
  t.equal(live.event, 'put')
  t.same(JSON.parse(live.data).key, 'app/web/b', 'the change outside the prefix was not sent')
  t.equal(Number(live.id), store.modifyIndex('app/web/b'), 'id is the store index')
  s.close()
  await s.ended

  await store.put('app/web/c', 'while away')
  await store.delete('app/web/a')
  const r = await openSse({ socketPath, path: '/v1/watch/app/web/', headers: { 'last-event-id': live.id } })
  t.teardown(() => r.close())
  const missed: string[] = []
  for (;;) {
    const e = await r.next()
    if (e.event === 'synced') break
    missed.push(`${e.event} ${JSON.parse(e.data).key}`)
  }
  t.same(missed, ['put app/web/c', 'delete app/web/a'], 'exactly what happened since the last event seen')
  const bad = await openSse({ socketPath, path: '/v1/watch/x', headers: { 'last-event-id': 'x' } })
  t.equal(bad.status, 400, 'a Last-Event-ID that is not an index is refused')
  bad.close()
  const metrics = await deps.metrics.figures()
  t.equal(metrics['plexus_api_watch_streams_total{outcome="opened"}'], 2)
})
