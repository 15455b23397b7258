import t from 'tap'
import { Replicator } from '../../../src/cluster/replicator.js'
import type { Transport } from '../../../src/cluster/transport.js'
import { realScheduler } from '../../../src/cluster/transport.js'
import { decodeState, encodePull } from '../../../src/cluster/wire.js'
import type { LocalStore } from '../../../src/store/store.js'
import { newStore } from '../store/helpers.js'

/** B's transport: every request goes straight to A's replicator; answers are recorded. */
function loopback(answer: (data: Uint8Array) => Uint8Array) {
  const answers: Uint8Array[] = []
  const transport: Transport = {
    self: 'b',
    setHandlers: () => {},
    publish: () => {},
    request: async (_peer, data) => {
      const res = answer(data)
      answers.push(res)
      return res
    },
    peers: () => ['a'],
  }
  return { transport, answers }
}

const cfg = { syncIntervalMs: 60_000, requestTimeoutMs: 1000 }

/** The replicator of the host that answers (its own transport is never used). */
const answering = (store: LocalStore) =>
  new Replicator(store, loopback(() => new Uint8Array()).transport, realScheduler, Math.random, cfg)

t.test('a full pull of a large store comes in pages, and raises watermarks only at the end', async (t) => {
  const now = { t: Date.now() }
  const a = await newStore({ now })
  const b = await newStore({ now })
  const value = 'x'.repeat(1000)
  for (let i = 0; i < 3000; i++) await a.store.put(`svc/${String(i).padStart(4, '0')}`, value)
  const ra = answering(a.store)
  const { transport, answers } = loopback((d) => ra.onRequest('b', d))
  const rb = new Replicator(b.store, transport, realScheduler, Math.random, cfg)
  await rb.pull('a', 'connect')
  t.ok(answers.length >= 3, `answered in ${answers.length} pages`)
  t.ok(
    answers.every((x) => x.byteLength < 2 * 1024 * 1024),
    'no page near the transport cap',
  )
  t.equal(b.store.list('svc/').length, 3000, 'every record arrived')
  t.same(b.store.digest().get(a.store.self), a.store.digest().get(a.store.self), "A's watermark taken over")
  t.equal(rb.stats.pullFailures, 0)
})

t.test('a pull without a page cursor (an agent of an earlier release) gets one answer', async (t) => {
  const a = await newStore({ now: { t: Date.now() } })
  for (let i = 0; i < 1500; i++) await a.store.put(`svc/${i}`, 'y'.repeat(1000))
  const ra = answering(a.store)
  const state = decodeState(ra.onRequest('old', encodePull(new Map())))
  t.equal(state.records.length, 1500)
  t.equal(state.next, undefined)
})

t.test(
  'a failed round hangs up on a peer that answers no probe, not on one that does; rounds do not pile up',
  async (t) => {
    const b = await newStore({ now: { t: Date.now() } })
    const resets: string[] = []
    let requests = 0
    let release: () => void = () => {}
    const transport: Transport = {
      self: 'b',
      setHandlers: () => {},
      publish: () => {},
      request: async () => {
        requests++
        await new Promise<void>((r) => {
          release = r
        })
        throw new Error('timed out after 1000 ms')
      },
      peers: () => ['a'],
      reset: (peer) => resets.push(peer),
    }
    let answered = Number.NEGATIVE_INFINITY
    const rb = new Replicator(b.store, transport, realScheduler, Math.random, {
      ...cfg,
      answeredSince: (_peer, since) => answered >= since,
    })
    const first = rb.pull('a', 'exchange')
    void rb.pull('a', 'exchange')
    void rb.pull('a', 'connect')
    t.equal(requests, 1, 'one exchange with a peer at a time')
    answered = Date.now() + 1
    release()
    await first
    t.same(resets, [], 'the peer answered a probe during the round: slow, not stalled; kept')
    const second = rb.pull('a', 'exchange')
    t.equal(requests, 2, 'the next round starts once the last has ended')
    answered = Number.NEGATIVE_INFINITY
    release()
    await second
    t.same(resets, ['a'], 'no probe answered during the round: the connection is dropped')
    t.equal(rb.stats.pullFailures, 2)
  },
)

t.test('a round of pages finds the records after the digest once, not once a page', async (t) => {
  const now = { t: Date.now() }
  const a = await newStore({ now })
  const b = await newStore({ now })
  for (let i = 0; i < 3000; i++) await a.store.put(`svc/${String(i).padStart(4, '0')}`, 'x'.repeat(1000))
  let found = 0
  const recordsAfter = a.store.recordsAfter.bind(a.store)
  a.store.recordsAfter = (d) => {
    found++
    return recordsAfter(d)
  }
  const ra = answering(a.store)
  const { transport, answers } = loopback((d) => ra.onRequest('b', d))
  await new Replicator(b.store, transport, realScheduler, Math.random, cfg).pull('a', 'connect')
  t.ok(answers.length >= 3, `${answers.length} pages`)
  t.equal(found, 1, 'one search for the whole round')
  t.equal(b.store.list('svc/').length, 3000, 'every record arrived')
  await new Replicator(b.store, transport, realScheduler, Math.random, cfg).pull('a', 'connect')
  t.equal(found, 2, 'the next round searches again')
})

t.test('a push is one page at most; it vouches only when it holds all the peer lacks', async (t) => {
  const now = { t: Date.now() }
  const a = await newStore({ now })
  const b = await newStore({ now })
  for (let i = 0; i < 3000; i++) await b.store.put(`svc/${String(i).padStart(4, '0')}`, 'x'.repeat(1000))
  const ra = answering(a.store)
  const { transport } = loopback((d) => ra.onRequest('b', d))
  const pushes: { bytes: number; marks: number }[] = []
  const rb = new Replicator(
    b.store,
    {
      ...transport,
      request: async (peer, data, ms) => {
        const m = JSON.parse(new TextDecoder().decode(data)) as { t: string; marks?: unknown[] }
        if (m.t === 'push') pushes.push({ bytes: data.byteLength, marks: m.marks?.length ?? 0 })
        return transport.request(peer, data, ms)
      },
    },
    realScheduler,
    Math.random,
    cfg,
  )
  let sorted = 0
  const recordsAfter = b.store.recordsAfter.bind(b.store)
  b.store.recordsAfter = (d) => {
    sorted++
    return recordsAfter(d)
  }
  await rb.pull('a', 'exchange')
  t.equal(sorted, 0, 'the pushing side sorted nothing: it walked its map until a page was full')
  t.equal(pushes.length, 1, 'one push in the round')
  t.ok((pushes[0]?.bytes ?? 0) < 2 * 1024 * 1024, 'of about a page')
  t.equal(pushes[0]?.marks, 0, 'without watermarks: it does not hold everything A lacks')
  const held = a.store.list('svc/').length
  t.ok(held > 0 && held < 3000, `A holds the first page (${held} records)`)
  t.notOk(a.store.digest().has(b.store.self), "A's watermark for B did not rise")

  // A pulls the rest itself, in its own round
  const back = loopback((d) => rb.onRequest('a', d))
  await new Replicator(
    a.store,
    { ...back.transport, self: 'a', peers: () => ['b'] },
    realScheduler,
    Math.random,
    cfg,
  ).pull('b', 'exchange')
  t.equal(a.store.list('svc/').length, 3000, "A's pull brought the rest")
  t.same(a.store.digest().get(b.store.self), b.store.digest().get(b.store.self), "A's watermark for B rose")

  // what fits in one page comes with the watermarks
  await b.store.put('svc/late', 'y')
  pushes.length = 0
  await rb.pull('a', 'exchange')
  t.same(
    pushes.map((p) => p.marks > 0),
    [true],
    'one push, vouching for what it carries',
  )
  t.equal(a.store.get('svc/late')?.value, 'y')
})

t.test('a joiner connected to several peers at once pulls the store once, not once a peer', async (t) => {
  const now = { t: Date.now() }
  const a = await newStore({ now })
  for (let i = 0; i < 2000; i++) await a.store.put(`svc/${String(i).padStart(4, '0')}`, 'x'.repeat(500))
  // B and C hold what A wrote, as every member of a settled cluster does
  const holders = { a: a.store } as Record<string, LocalStore>
  for (const name of ['b', 'c']) {
    const h = await newStore({ now })
    await new Replicator(
      h.store,
      loopback((d) => answering(a.store).onRequest(name, d)).transport,
      realScheduler,
      Math.random,
      cfg,
    ).pull('a', 'connect')
    holders[name] = h.store
  }
  const j = await newStore({ now })
  const answeringOf = Object.fromEntries(Object.entries(holders).map(([n, s]) => [n, answering(s)]))
  let handlers: Parameters<Transport['setHandlers']>[0] | undefined
  const received: Record<string, number> = {}
  const connected = new Set(['a', 'b', 'c'])
  const transport: Transport = {
    self: 'j',
    setHandlers: (h) => {
      handlers = h
    },
    publish: () => {},
    request: async (peer, data) => {
      await new Promise((r) => setImmediate(r)) // a real exchange yields, so pulls could overlap
      const res = (answeringOf[peer] as Replicator).onRequest('j', data)
      received[peer] = (received[peer] ?? 0) + decodeState(res).records.length
      return res
    },
    peers: () => [...connected],
  }
  const rj = new Replicator(j.store, transport, realScheduler, Math.random, cfg)
  rj.start()
  t.teardown(() => rj.stop())
  connected.add('gone')
  for (const peer of ['a', 'b', 'c', 'gone']) handlers?.connected(peer)
  connected.delete('gone') // hung up before its turn
  await until(() => rj.stats.pulls === 3)
  t.equal(j.store.list('svc/').length, 2000, 'every record arrived')
  t.equal(received.a, 2000, 'the first connection brought the store')
  t.same([received.b, received.c], [0, 0], 'the next ones brought only what is newer than its watermarks')
  t.equal(received.gone, undefined, 'a peer gone before its turn is not asked')
  t.equal(rj.stats.pullFailures, 0)
})

/** polls cond every 5 ms for up to 10 s */
async function until(cond: () => boolean): Promise<void> {
  for (const end = Date.now() + 10_000; !cond(); ) {
    if (Date.now() > end) throw new Error('condition not met in 10 s')
    await new Promise((r) => setTimeout(r, 5))
  }
}
