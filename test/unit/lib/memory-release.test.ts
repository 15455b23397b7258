// The periodic memory release (src/lib/memory-release.ts): when it asks V8
// for a collection (ReducePolicy, pure), that the real addon's reduce()
// (dist/native/plexus_mem.node) does shrink a heap holding garbage, and that
// the releaser trims on its interval and stops when stopped. What it gives
// back on agents is measured in bench/ (native/README.md).
import { getHeapStatistics } from 'node:v8'
import { pino } from 'pino'
import t from 'tap'
import { MemoryReleaser, ReducePolicy } from '../../../src/lib/memory-release.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { loadAddon } from '../../../src/lib/native.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const MB = 2 ** 20

t.test('policy: asks once the heap grew a quarter (8 MB at least) over the floor while quiet', async (t) => {
  const p = new ReducePolicy()
  t.same(p.tick(40 * MB, 0), { ask: false, freed: 0 }, 'the first reading sets the floor')
  t.same(p.tick(47 * MB, 0), { ask: false, freed: 0 }, '7 MB: under 8 MB')
  t.same(p.tick(50 * MB, 0.6), { ask: false, freed: 0 }, 'grown enough, but the loop was busy')
  t.same(p.tick(50 * MB, 0.2), { ask: true, freed: 0 }, 'grown 10 MB while quiet')
  t.same(p.tick(43 * MB, 0.2), { ask: false, freed: 7 * MB }, 'the next tick counts what it freed')
  t.same(p.tick(50 * MB, 0), { ask: false, freed: 0 }, 'the floor is now what it left: 43 MB')
  t.same(p.tick(53.75 * MB, 0), { ask: true, freed: 0 }, 'a quarter over 43')
})

t.test('policy: a collection that freed a burst is followed by more until one frees little', async (t) => {
  const p = new ReducePolicy()
  p.tick(100 * MB, 0)
  t.same(p.tick(200 * MB, 0), { ask: true, freed: 0 }, 'after a burst')
  t.same(p.tick(130 * MB, 0), { ask: true, freed: 70 * MB }, 'it freed 70 MB: once more')
  t.same(p.tick(125 * MB, 0), { ask: false, freed: 5 * MB }, 'that one freed 5 MB: done')
  t.same(p.tick(140 * MB, 0), { ask: false, freed: 0 }, 'the floor is 125 MB')
  t.same(p.tick(160 * MB, 0), { ask: true, freed: 0 }, 'a quarter over 125')
  t.same(p.tick(150 * MB, 0.9), { ask: false, freed: 10 * MB }, 'busy by then: no second')
})

t.test('policy: a quarter of a big heap; the floor follows a lower reading', async (t) => {
  const p = new ReducePolicy()
  p.tick(200 * MB, 0)
  t.same(p.tick(240 * MB, 0), { ask: false, freed: 0 }, '40 MB over 200: under a quarter')
  t.same(p.tick(120 * MB, 0), { ask: false, freed: 0 }, 'V8 collected by itself: the floor is 120 MB')
  t.same(p.tick(150 * MB, 0), { ask: true, freed: 0 }, 'a quarter over 120')
  t.same(p.tick(160 * MB, 0), { ask: false, freed: 0 }, 'a collection that freed nothing counts nothing')
  t.same(p.tick(190 * MB, 0), { ask: false, freed: 0 }, 'and its result, 160 MB, is the floor')
})

t.test('reduce(): the heap holding garbage shrinks without a stop-the-world collection', async (t) => {
  const addon = loadAddon<{ reduce(): boolean }>('plexus_mem', 'PLX_NATIVE_MEM_ADDON')
  // ~15 MB that outlives the young generation, then dropped: an idle process keeps it until told
  let held: { n: number; s: string }[][] = []
  for (let i = 0; i < 600; i++) held.push(Array.from({ length: 300 }, (_, n) => ({ n, s: `g${n}-${i}` })))
  await sleep(50)
  held = []
  const grown = getHeapStatistics().used_heap_size
  t.ok(addon.reduce(), 'asked')
  const right = getHeapStatistics().used_heap_size
  t.ok(
    right > grown - 2 * MB,
    'nothing collected inside the call: the collection runs incrementally after it',
  )
  await sleep(1000)
  const after = getHeapStatistics().used_heap_size
  t.ok(after < grown - 8 * MB, `heap in use ${Math.round(grown / MB)} MB → ${Math.round(after / MB)} MB`)
  t.equal(held.length, 0)
})

t.test('trims every interval, counts its runs, stops', async (t) => {
  const metrics = new Metrics()
  const releaser = new MemoryReleaser(metrics, pino({ level: 'silent' }), 20)
  await releaser.start()
  await sleep(200)
  await releaser.stop()
  const runs = await metrics.value('plexus_process_malloc_trim_runs_total')
  t.ok(runs >= 3, `${runs} runs in 200 ms at a 20 ms interval`)
  await sleep(100)
  t.equal(await metrics.value('plexus_process_malloc_trim_runs_total'), runs, 'no run after stop')
})
