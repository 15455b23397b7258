// The periodic malloc_trim (src/lib/malloc-trim.ts) through the real addon
// (dist/native/plexus_mem.node): it runs on its interval, counts its runs,
// and stops when stopped. What it gives back is measured on agents (native/README.md).
import { pino } from 'pino'
import t from 'tap'
import { MallocTrimmer } from '../../../src/lib/malloc-trim.js'
import { Metrics } from '../../../src/lib/metrics.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('runs every interval, counts its runs, stops', async (t) => {
  const metrics = new Metrics()
  const trimmer = new MallocTrimmer(metrics, pino({ level: 'silent' }), 20)
  await trimmer.start()
  await sleep(200)
  await trimmer.stop()
  const runs = await metrics.value('plexus_process_malloc_trim_runs_total')
  t.ok(runs >= 3, `${runs} runs in 200 ms at a 20 ms interval`)
  await sleep(100)
  t.equal(await metrics.value('plexus_process_malloc_trim_runs_total'), runs, 'no run after stop')
})
