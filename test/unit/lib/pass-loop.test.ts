import t from 'tap'
import { PassLoop } from '../../../src/lib/pass-loop.js'

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A loop over a fake store index; each pass records (full, index) and can be held open or made to fail. */
function harness(debounceMs = 20) {
  const store = { index: 0 }
  const passes: { full: boolean; index: number }[] = []
  const errors: unknown[] = []
  let gate: Promise<void> | undefined
  let fail = false
  let inside = 0
  let overlapped = false
  const loop = new PassLoop({
    debounceMs,
    intervalMs: 60_000,
    index: () => store.index,
    pass: async (full) => {
      inside++
      if (inside > 1) overlapped = true
      passes.push({ full, index: store.index })
      try {
        if (gate) await gate
        if (fail) throw new Error('kernel said no')
      } finally {
        inside--
      }
    },
    onError: (err) => errors.push(err),
  })
  return {
    loop,
    store,
    passes,
    errors,
    hold() {
      let open = () => {}
      gate = new Promise<void>((resolve) => {
        open = resolve
      })
      return () => {
        gate = undefined
        open()
      }
    },
    failing(on: boolean) {
      fail = on
    },
    get overlapped() {
      return overlapped
    },
  }
}

t.test('start runs one full pass; a burst of triggers is one light pass after the debounce', async (t) => {
  const h = harness()
  await h.loop.start()
  t.teardown(() => h.loop.stop())
  t.same(h.passes, [{ full: true, index: 0 }])
  for (let i = 0; i < 10; i++) h.loop.trigger()
  t.equal(h.passes.length, 1, 'nothing before the debounce')
  await tick(80)
  t.same(h.passes.slice(1), [{ full: false, index: 0 }], 'ten triggers, one pass')
  t.equal(h.loop.status().passes, 2)
})

t.test('passes never overlap: a run during a pass runs once more right after it', async (t) => {
  const h = harness()
  await h.loop.start()
  t.teardown(() => h.loop.stop())
  const release = h.hold()
  const first = h.loop.run(false)
  const second = h.loop.run(true)
  const third = h.loop.run(false)
  await tick(10)
  t.equal(h.passes.length, 2, 'the second and third wait for the first')
  release()
  await Promise.all([first, second, third])
  t.notOk(h.overlapped, 'no two passes at once')
  t.same(
    h.passes.slice(1).map((p) => p.full),
    [false, true],
    'one more pass after the held one, and it is full because a caller asked for it',
  )
})

t.test('converged resolves once a pass has read the store at that index', async (t) => {
  const h = harness()
  await h.loop.start()
  t.teardown(() => h.loop.stop())
  await h.loop.converged(0, 1000)
  t.pass('index 0 was applied by the first pass')
  h.store.index = 5
  const release = h.hold()
  // a pass that read index 5 is running; a write lands at 6 while it runs
  const running = h.loop.run(false)
  h.store.index = 6
  let done = false
  const waiting = h.loop.converged(6, 2000).then(() => {
    done = true
  })
  await tick(30)
  t.notOk(done, 'the pass that started before the write does not count')
  release()
  await running
  await waiting
  t.ok(done)
  t.equal(h.loop.status().applied, 6)
  t.equal(h.passes.at(-1)?.index, 6, 'a pass that read index 6 ran')
})

t.test('converged brings a pending debounced pass forward instead of waiting it out', async (t) => {
  const h = harness(500)
  await h.loop.start()
  t.teardown(() => h.loop.stop())
  h.store.index = 3
  h.loop.trigger() // what the store watch does on the write: a pass in 500 ms
  const started = Date.now()
  await h.loop.converged(3, 2000)
  t.ok(Date.now() - started < 250, 'answered well before the debounce')
  t.equal(h.passes.length, 2, 'one pass, not one more after the debounce')
  await tick(600)
  t.equal(h.passes.length, 2, 'the earlier trigger was folded into it')
})

t.test('a failing pass is reported, applies nothing, and the loop goes on', async (t) => {
  const h = harness()
  await h.loop.start()
  t.teardown(() => h.loop.stop())
  h.failing(true)
  h.store.index = 3
  await t.rejects(h.loop.converged(3, 200), /store index 3 not applied within 200 ms/)
  t.ok(h.errors.length >= 1, 'the owner heard of the failure')
  t.match(h.loop.status(), { applied: 0, lastPass: { error: 'kernel said no', index: 3 } })
  t.ok(h.loop.status().failures >= 1)
  h.failing(false)
  await h.loop.converged(3, 1000)
  t.equal(h.loop.status().applied, 3, 'applied once a pass succeeds')
})

t.test(
  'stop waits for the pass in progress, refuses waiters, and triggers do nothing after it',
  async (t) => {
    const h = harness()
    await h.loop.start()
    h.store.index = 9
    const release = h.hold()
    const running = h.loop.run(false)
    // the waiter's pass will only come after the running one: stop before that
    const waiter = h.loop.converged(10, 5000)
    const stopped = h.loop.stop()
    release()
    await running
    await stopped
    await t.rejects(waiter, /stopped before the store was applied/)
    const n = h.passes.length
    h.loop.trigger(0)
    await tick(50)
    t.equal(h.passes.length, n, 'no pass after stop')
  },
)

t.test('a change under a watched prefix triggers a pass; stop cancels the watches', async (t) => {
  const watchers = new Map<string, () => void>()
  const passes: boolean[] = []
  const loop = new PassLoop({
    debounceMs: 10,
    intervalMs: 60_000,
    index: () => 0,
    pass: async (full) => {
      passes.push(full)
    },
    onError: () => {},
    watch: {
      store: {
        watch: (prefix, fn) => {
          watchers.set(prefix, fn)
          return () => watchers.delete(prefix)
        },
      },
      prefixes: ['jobs/', 'allocs/'],
    },
  })
  t.same([...watchers.keys()], [], 'nothing watched before start')
  await loop.start()
  t.same([...watchers.keys()], ['jobs/', 'allocs/'], 'both prefixes watched')
  watchers.get('allocs/')?.()
  await tick(40)
  t.same(passes, [true, false], 'the first full pass, then one light pass for the change')
  await loop.stop()
  t.same([...watchers.keys()], [], 'stop cancels every watch')
})
