import t from 'tap'
import { Replicator } from '../../../src/cluster/replicator.js'
import type { Transport } from '../../../src/cluster/transport.js'
import { realScheduler } from '../../../src/cluster/transport.js'
import { decodeDelta, MAX_GOSSIP_BYTES } from '../../../src/cluster/wire.js'
import { newStore } from '../store/helpers.js'

/** A transport whose unsent gossip the test sets, recording what was published. */
function fakeTransport() {
  const published: Uint8Array[] = []
  const state = { backlog: 0 }
  const transport: Transport = {
    self: 'fake',
    setHandlers: () => {},
    publish: (d) => void published.push(d),
    request: () => Promise.reject(new Error('no peers')),
    peers: () => [],
    backlogBytes: () => state.backlog,
  }
  return { transport, published, state }
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms))

t.test('local writes of one burst share deltas under the gossip size cap, in order', async (t) => {
  const { store } = await newStore({ now: { t: Date.now() } })
  const { transport, published } = fakeTransport()
  const r = new Replicator(store, transport, realScheduler, Math.random, {
    syncIntervalMs: 60_000,
    requestTimeoutMs: 1000,
  })
  r.start()
  t.teardown(() => r.stop())
  const value = 'v'.repeat(2000)
  for (let i = 0; i < 200; i++) await store.put(`k/${i}`, value)
  await tick(10)
  const keys = published.flatMap((d) => decodeDelta(d).records.map((x) => (x as { key: string }).key))
  t.same(
    keys,
    Array.from({ length: 200 }, (_, i) => `k/${i}`),
    'every write published once, in order',
  )
  t.ok(published.length > 1 && published.length < 20, `batched into ${published.length} deltas`)
  t.ok(
    published.every((d) => d.byteLength <= MAX_GOSSIP_BYTES),
    'each within the cap a receiver accepts',
  )
})

t.test('the outbox waits while the transport is backed up, and reports its backlog', async (t) => {
  const { store } = await newStore({ now: { t: Date.now() } })
  const { transport, published, state } = fakeTransport()
  const r = new Replicator(store, transport, realScheduler, Math.random, {
    syncIntervalMs: 60_000,
    requestTimeoutMs: 1000,
    maxOutbox: 5,
    maxTransportBacklogBytes: 1000,
  })
  r.start()
  t.teardown(() => r.stop())
  state.backlog = 5000
  for (let i = 0; i < 7; i++) await store.put(`k/${i}`, i)
  await tick(50)
  t.equal(published.length, 0, 'nothing published into a full transport')
  t.same(r.backlog(), { pending: 7, limit: 5 }, 'the writes wait in the outbox, past its limit')
  state.backlog = 0
  await tick(100)
  t.same(r.backlog(), { pending: 0, limit: 5 }, 'drained once the transport caught up')
  t.equal(published.flatMap((d) => decodeDelta(d).records).length, 7)
})

t.test("this host's node record goes out ahead of a backlog of other writes", async (t) => {
  const { store } = await newStore({ now: { t: Date.now() } })
  const { transport, published, state } = fakeTransport()
  const r = new Replicator(store, transport, realScheduler, Math.random, {
    syncIntervalMs: 60_000,
    requestTimeoutMs: 1000,
    maxTransportBacklogBytes: 1000,
  })
  r.start()
  t.teardown(() => r.stop())
  state.backlog = 5000
  for (let i = 0; i < 50; i++) await store.put(`k/${i}`, i)
  await store.put(`nodes/${store.self}`, { name: 'h1', address: '192.0.2.1' }, { ttlMs: 30_000 })
  state.backlog = 0
  await tick(100)
  const keys = published.flatMap((d) => decodeDelta(d).records.map((x) => (x as { key: string }).key))
  t.equal(keys[0], `nodes/${store.self}`, 'the node record first')
  t.equal(keys.length, 51, 'then every other write')
})
