import { pino } from 'pino'
import t from 'tap'
import type { AgentComponents } from '../../../src/agent/components.js'
import { defaultConfig } from '../../../src/agent/config.js'
import { buildApp } from '../../../src/api/app.js'
import { refusal } from '../../../src/api/routes/kv.js'
import { Membership } from '../../../src/cluster/membership.js'
import type { ReplicationBacklog } from '../../../src/cluster/service.js'
import { realScheduler } from '../../../src/cluster/transport.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { formatSecretKey, generateKeyPair, sealValue } from '../../../src/lib/sealed.js'
import { newStore } from '../store/helpers.js'

async function setup(backlog: ReplicationBacklog = { pending: 0, limit: 10 }) {
  const { store, clock } = await newStore({ now: { t: Date.now() } })
  const config = { ...defaultConfig(), name: 'h1' }
  const logger = pino({ level: 'silent' })
  const members = new Membership({
    store,
    sched: realScheduler,
    rng: Math.random,
    logger,
    cfg: config.cluster,
    describe: () => ({
      name: 'h1',
      address: '192.0.2.11',
      multiaddrs: [],
      labels: { zone: 'a' },
      version: '1',
      startedAt: new Date().toISOString(),
    }),
    connectedPeers: () => [],
  })
  await members.announce()
  const deps = {
    config,
    logger,
    metrics: new Metrics(),
    shutdown: new AbortController().signal,
    startedAt: new Date(),
    version: '1',
    peerId: store.self,
    store,
    members: { hosts: () => members.hosts(), replicationBacklog: () => backlog },
  } as AgentComponents
  const app = await buildApp(deps)
  return { app, store, clock, members, metrics: deps.metrics }
}

t.test('KV: put, get, recurse, keys, delete, ttl, cas', async (t) => {
  const { app, store } = await setup()
  t.teardown(() => app.close())
  const put = (url: string, body: unknown) =>
    app.inject({
      method: 'PUT',
      url,
      payload: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    })
  let res = await put('/v1/kv/app/web/port', 8080)
  t.equal(res.statusCode, 200)
  t.equal(res.json().value, 8080)
  t.ok(Number(res.headers['x-plexus-index']) > 0)
  await put('/v1/kv/app/web/name', { n: 'web' })
  res = await app.inject({ method: 'GET', url: '/v1/kv/app/web/port' })
  t.equal(res.json().owner, store.self)
  res = await app.inject({ method: 'GET', url: '/v1/kv/app/?recurse' })
  t.same(
    res.json().map((e: { key: string }) => e.key),
    ['app/web/name', 'app/web/port'],
  )
  res = await app.inject({ method: 'GET', url: '/v1/kv/app/?keys=true' })
  t.same(res.json(), ['app/web/name', 'app/web/port'])
  res = await app.inject({ method: 'GET', url: '/v1/kv/nope' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_KV_NOT_FOUND')

  res = await put('/v1/kv/session/a?ttl=30s', 'x')
  t.equal(res.json().ttlMs, 30_000)
  t.ok(res.json().expiresAt)

  const idx = store.modifyIndex('app/web/port')
  res = await put(`/v1/kv/app/web/port?cas=${idx + 100}`, 1)
  t.equal(res.statusCode, 409)
  t.equal(res.json().error, 'PLX_STORE_CAS_FAILED')
  res = await put(`/v1/kv/app/web/port?cas=${idx}`, 1)
  t.equal(res.statusCode, 200)

  res = await app.inject({ method: 'DELETE', url: '/v1/kv/app/?recurse' })
  t.same(res.json(), { deleted: 2, skipped: [] })
  t.equal(store.get('app/web/port'), undefined)
})

t.test('KV: writes get 503 + Retry-After while the replication backlog is full; reads do not', async (t) => {
  const backlog = { pending: 0, limit: 2 }
  const { app, store, metrics } = await setup(backlog)
  t.teardown(() => app.close())
  const write = (method: 'PUT' | 'DELETE') =>
    app.inject({ method, url: '/v1/kv/a', payload: '1', headers: { 'content-type': 'application/json' } })
  t.equal((await write('PUT')).statusCode, 200, 'accepted below the limit')
  backlog.pending = 2
  for (const method of ['PUT', 'DELETE'] as const) {
    const res = await write(method)
    t.equal(res.statusCode, 503, `${method} refused at the limit`)
    t.equal(res.headers['retry-after'], '1')
    t.equal(res.json().error, 'PLX_API_BUSY')
  }
  t.equal(await metrics.value('plexus_api_kv_writes_throttled_total'), 2, 'each refusal counted')
  t.equal(store.get('a')?.value, 1, 'a refused delete changed nothing')
  t.equal((await app.inject({ method: 'GET', url: '/v1/kv/a' })).statusCode, 200, 'reads still served')
  backlog.pending = 1
  t.equal((await write('DELETE')).statusCode, 200, 'accepted again once it drains')
})

t.test('KV: writes get 503 while the event loop has had no room; the reason says which limit', async (t) => {
  const backlog: ReplicationBacklog = { pending: 0, limit: 10, loop: { busy: 0.5, limit: 0.9 } }
  const { app } = await setup(backlog)
  t.teardown(() => app.close())
  const put = () =>
    app.inject({
      method: 'PUT',
      url: '/v1/kv/a',
      payload: '1',
      headers: { 'content-type': 'application/json' },
    })
  t.equal((await put()).statusCode, 200, 'half busy: accepted')
  backlog.loop = { busy: 0.97, limit: 0.9 }
  const res = await put()
  t.equal(res.statusCode, 503, 'busy past the limit: refused')
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json().message, /event loop was 97 % busy over the last second \(limit 90 %\)/)
  t.equal((await app.inject({ method: 'GET', url: '/v1/kv/a' })).statusCode, 200, 'reads still served')
  t.equal(refusal({ pending: 10, limit: 10 }), '10 writes are waiting to reach the cluster')
  t.equal(refusal({ pending: 0, limit: Number.POSITIVE_INFINITY }), undefined, 'standalone: never')
  t.equal(refusal(undefined), undefined)
})

t.test('KV: bad input gets 400 with a reason, foreign owned keys 403', async (t) => {
  const { app } = await setup()
  t.teardown(() => app.close())
  const cases: [string, string, unknown, string][] = [
    ['PUT', '/v1/kv/a', '{"broken', 'json'],
    ['PUT', '/v1/kv/a?ttl=soon', '1', 'ttl'],
    ['PUT', '/v1/kv/a?bogus=1', '1', 'bogus'],
    ['PUT', '/v1/kv/a%20b', '1', 'key'],
    ['GET', '/v1/kv/a?index=-1', undefined, 'index'],
  ]
  for (const [method, url, payload, why] of cases) {
    const res = await app.inject({
      method: method as 'PUT',
      url,
      payload: payload as string,
      headers: payload === undefined ? {} : { 'content-type': 'application/json' },
    })
    t.equal(res.statusCode, 400, `${method} ${url}: ${why}`)
    t.ok(res.json().message, `reason: ${res.json().message}`)
  }
  const res = await app.inject({
    method: 'PUT',
    url: '/v1/kv/leases/12D3KooWNotThisHost',
    payload: '{}',
    headers: { 'content-type': 'application/json' },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.json().error, 'PLX_STORE_NOT_OWNER')
})

t.test('KV: blocking query returns on change, or after wait', async (t) => {
  const { app, store } = await setup()
  t.teardown(() => app.close())
  await store.put('cfg/x', 1)
  const index = store.index
  const started = Date.now()
  const pending = app.inject({ method: 'GET', url: `/v1/kv/cfg/?recurse&index=${index}&wait=5s` })
  setTimeout(() => void store.put('cfg/y', 2), 100)
  const res = await pending
  t.ok(Date.now() - started < 3000, 'woke on the change')
  t.same(
    res.json().map((e: { key: string }) => e.key),
    ['cfg/x', 'cfg/y'],
  )
  const t0 = Date.now()
  const idle = await app.inject({ method: 'GET', url: `/v1/kv/cfg/x?index=${store.index}&wait=200ms` })
  t.ok(Date.now() - t0 >= 190, 'waited for the timeout')
  t.equal(idle.statusCode, 200)
})

t.test('KV: a blocking prefix query sees a delete that came before it', async (t) => {
  const { app, store } = await setup()
  t.teardown(() => app.close())
  await store.put('cfg/x', 1)
  await store.put('cfg/y', 2)
  const first = await app.inject({ method: 'GET', url: '/v1/kv/cfg/?recurse' })
  const index = Number(first.headers['x-plexus-index'])
  await store.delete('cfg/y') // between the watcher's two requests
  const t0 = Date.now()
  const res = await app.inject({ method: 'GET', url: `/v1/kv/cfg/?recurse&index=${index}&wait=2s` })
  t.ok(Date.now() - t0 < 1000, 'answered at once, not after the wait')
  t.same(
    res.json().map((e: { key: string }) => e.key),
    ['cfg/x'],
  )
})

t.test('hosts: list with state and labels; label another host through the shared key', async (t) => {
  const { app, store, members } = await setup()
  t.teardown(() => app.close())
  let res = await app.inject({ method: 'GET', url: '/v1/hosts' })
  const [me] = res.json().hosts
  t.match(me, { name: 'h1', peerId: store.self, state: 'alive', self: true, labels: { zone: 'a' } })
  res = await app.inject({
    method: 'PUT',
    url: '/v1/hosts/h1/labels',
    payload: { labels: { rack: 'r1', zone: null } },
  })
  t.equal(res.statusCode, 200)
  t.same(res.json().labels, { rack: 'r1' })
  await members.announce()
  res = await app.inject({ method: 'GET', url: '/v1/hosts' })
  t.same(res.json().hosts[0].labels, { zone: 'a', rack: 'r1' })
  res = await app.inject({ method: 'PUT', url: '/v1/hosts/ghost/labels', payload: { labels: {} } })
  t.equal(res.statusCode, 404)
  res = await app.inject({
    method: 'PUT',
    url: '/v1/hosts/h1/labels',
    payload: { labels: { 'bad key': 'x' } },
  })
  t.equal(res.statusCode, 400)
})

t.test(
  'KV: X-Plexus-Seal-Key opens a sealed value for this request; wrong keys and plain values are refused',
  async (t) => {
    const { app } = await setup()
    t.teardown(() => app.close())
    const mine = generateKeyPair()
    const other = generateKeyPair()
    const put = (url: string, body: unknown) =>
      app.inject({
        method: 'PUT',
        url,
        payload: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      })
    t.equal(
      (await put('/v1/kv/secret/db', sealValue({ password: 's3cret' }, mine.publicKey))).statusCode,
      200,
    )
    t.equal((await put('/v1/kv/plain/x', 1)).statusCode, 200)
    const get = (url: string, key?: string) =>
      app.inject({ method: 'GET', url, headers: key === undefined ? {} : { 'x-plexus-seal-key': key } })

    const sealed = await get('/v1/kv/secret/db')
    t.equal(sealed.json().value.sealed, 1, 'without the header: the envelope, as stored')
    t.notMatch(sealed.body, /s3cret/)
    const opened = await get('/v1/kv/secret/db', formatSecretKey(mine.secretKey))
    t.equal(opened.statusCode, 200)
    t.same(opened.json().value, { password: 's3cret' }, 'with the key: the value opened')
    t.equal(opened.json().key, 'secret/db')

    const wrong = await get('/v1/kv/secret/db', formatSecretKey(other.secretKey))
    t.equal(wrong.statusCode, 403)
    t.equal(wrong.json().error, 'PLX_SEAL_WRONG_KEY')
    const junk = await get('/v1/kv/secret/db', 'plx-not-a-key')
    t.equal(junk.statusCode, 400)
    t.equal(junk.json().error, 'PLX_SEAL_BAD_KEY')
    t.notMatch(junk.body, /plx-not-a-key/, 'the header is not echoed')
    const plain = await get('/v1/kv/plain/x', formatSecretKey(mine.secretKey))
    t.equal(plain.statusCode, 400)
    t.equal(plain.json().error, 'PLX_SEAL_NOT_SEALED')
    const prefix = await get('/v1/kv/secret/?recurse', formatSecretKey(mine.secretKey))
    t.equal(prefix.statusCode, 400)
    t.equal(prefix.json().error, 'PLX_SEAL_USAGE')
  },
)
