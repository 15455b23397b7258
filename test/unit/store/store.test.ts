import t from 'tap'
import { verifyRecordSignature } from '../../../src/cluster/identity.js'
import { compareHlc, hlcObserve, hlcTick } from '../../../src/store/hlc.js'
import { canonicalJson, keyOwner, mayWrite, signingText } from '../../../src/store/record.js'
import type { StoreRecord, WatchEvent } from '../../../src/store/types.js'
import { newStore } from './helpers.js'

const REJECTED = 'plexus_store_records_rejected_total'

t.test('hlc: ticks follow wall time and stay ordered when the clock stalls or lags', async (t) => {
  const a = hlcTick({ wall: 100, logical: 3 }, 50)
  t.same(a, { wall: 100, logical: 4 })
  t.same(hlcTick(a, 200), { wall: 200, logical: 0 })
  const r = hlcObserve({ wall: 100, logical: 1 }, { wall: 150, logical: 7 }, 120)
  t.same(r, { wall: 150, logical: 8 })
  t.ok(compareHlc(hlcTick(r, 120), { wall: 150, logical: 7 }) > 0)
})

t.test('record rules: ownership and canonical encoding', async (t) => {
  t.equal(keyOwner('nodes/P1'), 'P1')
  t.equal(keyOwner('endpoints/P1/c/eth0'), 'P1')
  t.equal(keyOwner('config/network'), undefined)
  t.ok(mayWrite('P1', 'leases/P1'))
  t.notOk(mayWrite('P2', 'leases/P1'))
  t.ok(mayWrite('P2', 'services/web'))
  t.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}')
})

t.test('put/get/list/delete with modify index, CAS and watch', async (t) => {
  const { store } = await newStore()
  const events: WatchEvent[] = []
  store.watch('app/', (e) => events.push(e))
  const r1 = await store.put('app/a', { x: 1 })
  t.equal(r1.owner, store.self)
  t.same(store.get('app/a')?.value, { x: 1 })
  const i1 = store.modifyIndex('app/a')
  t.ok(i1 > 0)
  await t.rejects(store.put('app/a', 2, { cas: 0 }), { code: 'PLX_STORE_CAS_FAILED' })
  await store.put('app/a', 2, { cas: i1 })
  await store.put('app/b', 3, { cas: 0 })
  await store.put('other', 4)
  t.same(
    store.list('app/').map((r) => r.key),
    ['app/a', 'app/b'],
  )
  t.equal(await store.delete('app/a', { cas: i1 }), false, 'stale cas refuses the delete')
  t.equal(await store.delete('app/a'), true)
  t.equal(await store.delete('app/a'), false, 'nothing live to delete')
  t.equal(store.get('app/a'), undefined)
  t.same(
    events.map((e) => `${e.type} ${e.key}`),
    ['put app/a', 'put app/a', 'put app/b', 'delete app/a'],
  )
  t.ok(events.every((e, i) => i === 0 || e.index > (events[i - 1] as WatchEvent).index))
})

t.test('prefix reads: within a segment, across segments, without a slash, after reaps', async (t) => {
  const clock = { t: 1_700_000_000_000 }
  const { store } = await newStore({ now: clock, reapAfterMs: 1000 })
  for (const k of ['app/a', 'app/b/c', 'apple/x', 'other', 'app', 'cfg/app/a']) await store.put(k, k)
  const keys = (p: string) => store.list(p).map((r) => r.key)
  t.same(keys('app/'), ['app/a', 'app/b/c'], 'a whole segment')
  t.same(keys('app/b'), ['app/b/c'], 'inside a segment')
  t.same(keys('app'), ['app', 'app/a', 'app/b/c', 'apple/x'], 'a prefix without a slash spans segments')
  t.same(keys(''), ['app', 'app/a', 'app/b/c', 'apple/x', 'cfg/app/a', 'other'], 'everything')
  t.same(keys('nothing/'), [], 'an unknown segment')
  t.same(
    store.listHeld('app/').map((r) => r.key),
    ['app/a', 'app/b/c'],
  )
  t.equal(store.prefixIndex('apple/'), store.modifyIndex('apple/x'))
  t.same(
    store.changesSince('app/', 0).events.map((e) => e.key),
    ['app/a', 'app/b/c'],
  )
  await store.delete('app/a')
  t.same(keys('app/'), ['app/b/c'], 'a tombstone is not listed')
  clock.t += 5000
  store.sweep()
  t.same(
    store.changesSince('app/', 0).events.map((e) => e.key),
    ['app/b/c'],
    'a reaped key is gone from its segment',
  )
  await store.put('app/a', 'again')
  t.same(keys('app/'), ['app/a', 'app/b/c'], 'and comes back when written again')
})

t.test('owner-only writes and key validation on local writes', async (t) => {
  const { store } = await newStore()
  await store.put(`nodes/${store.self}`, { name: 'h1' })
  await t.rejects(store.put('nodes/12D3KooWSomeoneElse', {}), { code: 'PLX_STORE_NOT_OWNER' })
  await t.rejects(store.delete('leases/12D3KooWSomeoneElse'), { code: 'PLX_STORE_NOT_OWNER' })
  await t.rejects(store.put('/abs', 1), { code: 'PLX_STORE_BAD_KEY' })
  await t.rejects(store.put('a b', 1), { code: 'PLX_STORE_BAD_KEY' })
  await t.rejects(store.put('big', 'x'.repeat(70_000)), { code: 'PLX_STORE_TOO_LARGE' })
})

t.test(
  'merge: LWW, commutative, rejects forged / unsigned / non-owner / malformed and counts them',
  async (t) => {
    const a = await newStore()
    const b = await newStore({ now: a.clock })
    const c = await newStore({ now: a.clock })
    const ra = await a.store.put('shared', 'from-a')
    a.clock.t += 1
    const rb = await b.store.put('shared', 'from-b')
    // same data in both orders ends the same
    c.store.merge([ra, rb])
    const d = await newStore({ now: a.clock })
    d.store.merge([rb, ra])
    t.equal(c.store.get('shared')?.value, 'from-b')
    t.equal(d.store.get('shared')?.value, 'from-b')
    t.same(c.store.merge([ra]).stale, 1)

    const own = await a.store.put(`nodes/${a.store.self}`, { name: 'a' })
    const forged: StoreRecord = { ...own, value: { name: 'evil' } }
    // b, a member holding the cluster key, signs validly a record under a's owned prefix
    const claim = { ...rb, key: `leases/${a.store.self}`, value: { subnet: '10.244.9.0/24' } }
    const nonOwner: StoreRecord = { ...claim, sig: b.signer.sign(signingText(claim)) }
    t.ok(
      verifyRecordSignature(b.store.self, signingText(nonOwner), nonOwner.sig),
      'the non-owner record is validly signed',
    )
    const unsigned = { ...ra, sig: undefined }
    const res = c.store.merge([forged, nonOwner, unsigned, { key: 5 }, 'junk'])
    t.equal(res.rejected, 5)
    t.equal(res.accepted.length, 0)
    t.equal(
      c.store.get(`leases/${a.store.self}`),
      undefined,
      'the validly signed non-owner record is not merged',
    )
    t.equal(await c.metrics.value(REJECTED, { reason: 'signature' }), 1)
    t.equal(await c.metrics.value(REJECTED, { reason: 'not-owner' }), 1)
    t.equal(await c.metrics.value(REJECTED, { reason: 'malformed' }), 3)

    const future = await newStore({ now: { t: a.clock.t + 3_600_000 } })
    const f = await future.store.put('x', 1)
    t.equal(c.store.merge([f]).rejected, 1)
    t.equal(await c.metrics.value(REJECTED, { reason: 'future' }), 1)
  },
)

t.test('TTL expiry, tombstones beat older writes, reaping after the bound', async (t) => {
  const a = await newStore({ reapAfterMs: 10_000 })
  const b = await newStore({ now: a.clock, reapAfterMs: 10_000 })
  const events: string[] = []
  b.store.watch('', (e) => events.push(`${e.type} ${e.key}`))
  const lease = await a.store.put('session/x', 1, { ttlMs: 2000 })
  b.store.merge([lease])
  t.ok(b.store.get('session/x'))
  a.clock.t += 2000
  t.equal(b.store.get('session/x'), undefined, 'expired at version.wall + ttl even before a sweep')
  b.store.sweep()
  t.same(events, ['put session/x', 'expire session/x'])

  const v1 = await a.store.put('k', 1)
  a.clock.t += 10
  await a.store.delete('k')
  const tomb = a.store.recordsAfter(new Map()).find((r) => r.key === 'k') as StoreRecord
  b.store.merge([tomb])
  t.equal(b.store.merge([v1]).stale, 1, 'the older live version cannot resurrect the key')
  t.equal(b.store.get('k'), undefined)
  a.clock.t += 10_001
  b.store.sweep()
  t.equal(b.store.modifyIndex('k'), 0, 'tombstone reaped after the bound')
})

t.test(
  "records share their owner's id while it owns any, and the id goes with its last record",
  async (t) => {
    const a = await newStore({ reapAfterMs: 10_000 })
    const b = await newStore({ now: a.clock, reapAfterMs: 10_000 })
    const owned = (b.store as unknown as { owned: Map<string, { id: string }> }).owned
    const key = `endpoints/${a.store.self}/c1/eth0`
    // off the wire, each record brings its own copy of the id
    const copy = (r: StoreRecord) => JSON.parse(JSON.stringify(r)) as StoreRecord
    b.store.merge([copy(await a.store.put(key, { name: 'c1' }))])
    b.store.merge([copy(await a.store.put('shared/x', 1))])
    t.same([...owned.keys()], [a.store.self], "a's id is held once")
    a.clock.t += 10
    await a.store.delete(key)
    b.store.merge([copy(a.store.recordsAfter(new Map()).find((r) => r.key === key) as StoreRecord)])
    a.clock.t += 10_001
    b.store.sweep()
    t.equal(b.store.modifyIndex(key), 0, 'its owned record reaped')
    t.same([...owned.keys()], [], 'and the id with it: a record of a shared key keeps its own')
    t.equal(b.store.get('shared/x')?.owner, a.store.self)
  },
)

t.test('prefixIndex counts deletes, expiries and reaped records under the prefix', async (t) => {
  const { store, clock } = await newStore({ reapAfterMs: 10_000 })
  await store.put('cfg/a', 1)
  await store.put('cfg/b', 2)
  await store.put('other/x', 3)
  t.equal(store.prefixIndex('cfg/'), store.modifyIndex('cfg/b'))
  t.equal(store.prefixIndex('none/'), 0)
  const before = store.index
  await store.delete('cfg/b')
  t.ok(
    store.prefixIndex('cfg/') > before,
    'a delete moves the prefix index, though cfg/b is gone from list()',
  )
  t.equal(store.prefixIndex('other/'), store.modifyIndex('other/x'), 'other prefixes unmoved')
  await store.put('cfg/ttl', 4, { ttlMs: 1000 })
  const put = store.prefixIndex('cfg/')
  clock.t += 1000
  store.sweep()
  t.ok(store.prefixIndex('cfg/') > put, 'an expiry moves it too')
  const dead = store.prefixIndex('cfg/')
  clock.t += 10_001
  store.sweep()
  t.equal(store.modifyIndex('cfg/b'), 0, 'tombstone reaped')
  t.equal(store.prefixIndex('cfg/'), dead, 'a reaped record still counts')
  t.equal(
    store.prefixIndex('none/'),
    dead,
    'for every prefix: one early answer at most, never a missed change',
  )
})

t.test(
  'changesSince tells every change under a prefix past an index, and when it no longer can',
  async (t) => {
    const { store, clock } = await newStore({ reapAfterMs: 10_000 })
    await store.put('cfg/a', 1)
    const from = store.index
    await store.put('cfg/b', 2, { ttlMs: 1000 })
    await store.put('other/x', 3)
    await store.put('cfg/c', 4)
    await store.delete('cfg/c')
    await store.put('cfg/a', 5)
    clock.t += 1000
    const seen = store.changesSince('cfg/', from)
    t.same(
      seen.events.map((e) => `${e.type} ${e.key}`),
      ['expire cfg/b', 'delete cfg/c', 'put cfg/a'],
      'oldest first; one event per key, its latest state; a TTL past its end is an expiry before any sweep',
    )
    t.ok(seen.complete)
    t.same(store.changesSince('cfg/', store.index).events, [], 'nothing past the newest index')
    clock.t += 10_001
    store.sweep()
    const after = store.changesSince('cfg/', from)
    t.same(
      after.events.map((e) => `${e.type} ${e.key}`),
      ['put cfg/a'],
      'reaped records are gone',
    )
    t.equal(after.complete, false, 'so a reader from before them is told it missed changes')
    t.equal(store.changesSince('cfg/', store.index).complete, true)
  },
)

t.test('records of a host whose node record expired are hidden everywhere, and return with it', async (t) => {
  const a = await newStore({ reapAfterMs: 60_000 })
  const b = await newStore({ now: a.clock, reapAfterMs: 60_000 })
  const node = await a.store.put(`nodes/${a.store.self}`, { name: 'a' }, { ttlMs: 5000 })
  const ep = await a.store.put(`endpoints/${a.store.self}/c1`, { ipv4: '10.244.1.2' })
  const lease = await a.store.put(`leases/${a.store.self}`, { subnet: '10.244.1.0/24' }, { ttlMs: 30_000 })
  const shared = await a.store.put('services/web', { name: 'web' })
  b.store.merge([ep, lease, node, shared])
  t.ok(b.store.get(`endpoints/${a.store.self}/c1`))
  a.clock.t += 5000
  b.store.sweep()
  t.equal(b.store.get(`endpoints/${a.store.self}/c1`), undefined, 'owned record hidden')
  t.ok(b.store.get(`leases/${a.store.self}`), 'a lease is not hidden: it lives by its own TTL')
  t.ok(b.store.get('services/web'), 'shared keys stay')
  const hb = await a.store.put(`nodes/${a.store.self}`, { name: 'a' }, { ttlMs: 5000 })
  b.store.merge([hb])
  t.ok(b.store.get(`endpoints/${a.store.self}/c1`), 'visible again with a fresh heartbeat')
  a.clock.t += 30_000
  b.store.sweep()
  t.equal(b.store.get(`leases/${a.store.self}`), undefined, 'the lease expires by its TTL')
  a.clock.t += 60_000
  b.store.sweep()
  t.equal(b.store.modifyIndex(`endpoints/${a.store.self}/c1`), 0, 'reaped with its node record')
  t.equal(b.store.digest().get(a.store.self), undefined, 'watermark dropped so the host can return')
})

t.test("a node record re-evaluates its owner's records only when the owner's liveness flips", async (t) => {
  const a = await newStore()
  const b = await newStore({ now: a.clock })
  const node = await a.store.put(`nodes/${a.store.self}`, { name: 'a' }, { ttlMs: 5000 })
  const ep = await a.store.put(`endpoints/${a.store.self}/c1`, { ipv4: '10.244.1.2' })
  b.store.merge([node, ep])
  const events: string[] = []
  b.store.watch('endpoints/', (ev) => events.push(ev.type))
  const indexBefore = b.store.modifyIndex(`endpoints/${a.store.self}/c1`)
  b.store.merge([await a.store.put(`nodes/${a.store.self}`, { name: 'a', n: 1 }, { ttlMs: 5000 })])
  t.same(events, [], 'a heartbeat of a live host: nothing of its own changes')
  t.equal(b.store.modifyIndex(`endpoints/${a.store.self}/c1`), indexBefore, 'its records keep their index')
  await a.store.delete(`nodes/${a.store.self}`)
  b.store.merge(a.store.recordsAfter(new Map())) // the tombstone, and what b holds already
  t.same(events, ['expire'], 'a deleted node record hides its records at once, without a sweep')
  t.equal(b.store.get(`endpoints/${a.store.self}/c1`), undefined)
  b.store.merge([await a.store.put(`nodes/${a.store.self}`, { name: 'a' }, { ttlMs: 5000 })])
  t.same(events, ['expire', 'put'], 'and shows them again when it returns')
})

t.test('eachAfter offers what recordsAfter returns, unsorted, and stops when told', async (t) => {
  const a = await newStore()
  for (let i = 0; i < 20; i++) await a.store.put(`k/${i}`, i)
  const since = a.store.digest()
  for (let i = 20; i < 30; i++) await a.store.put(`k/${i}`, i)
  const offered: string[] = []
  t.ok(
    a.store.eachAfter(since, (r) => offered.push(r.key) > 0),
    'true when every record was offered',
  )
  t.same(
    offered.sort(),
    a.store
      .recordsAfter(since)
      .map((r) => r.key)
      .sort(),
    'the same records',
  )
  t.equal(offered.length, 10, 'only those after the digest')
  const taken: string[] = []
  t.notOk(
    a.store.eachAfter(new Map(), (r) => taken.length < 3 && taken.push(r.key) > 0),
    'false when the caller stopped',
  )
  t.equal(taken.length, 3, 'and nothing past that was taken')
})

t.test('digest sync: recordsAfter + raiseWatermarks transfers exactly what is missing', async (t) => {
  const a = await newStore()
  const b = await newStore({ now: a.clock })
  for (let i = 0; i < 5; i++) await a.store.put(`k/${i}`, i)
  const first = a.store.recordsAfter(b.store.digest())
  t.equal(first.length, 5)
  b.store.merge(first)
  b.store.raiseWatermarks(a.store.digest())
  t.equal(a.store.recordsAfter(b.store.digest()).length, 0)
  await a.store.put('k/5', 5)
  t.same(
    a.store.recordsAfter(b.store.digest()).map((r) => r.key),
    ['k/5'],
  )
})

t.test('snapshot restores records, indexes, clock and watermarks', async (t) => {
  const a = await newStore()
  await a.store.put('x', { y: 1 })
  await a.store.delete('x')
  await a.store.put('z', 2)
  const snap = JSON.parse(JSON.stringify(a.store.snapshot()))
  const r = await newStore({ signer: a.signer, now: a.clock, snapshot: snap })
  t.equal(r.store.index, a.store.index)
  t.same(r.store.get('z')?.value, 2)
  t.equal(r.store.get('x'), undefined)
  t.equal(r.store.modifyIndex('z'), a.store.modifyIndex('z'))
  const next = await r.store.put('z', 3)
  t.ok(compareHlc(next.version, a.store.get('z')!.version) > 0)
})
