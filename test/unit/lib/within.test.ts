// within(): the answer of the work, or the late one once its time is up.
import t from 'tap'
import { within } from '../../../src/lib/within.js'

const after = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms))

t.test('the work answers in time: its value', async (t) => {
  t.equal(await within(after(5, 'work'), 1000, () => 'late'), 'work')
})

t.test('the work is slow: the late value once the time is up', async (t) => {
  const started = Date.now()
  t.equal(await within(after(2000, 'work'), 50, () => 'late'), 'late')
  t.ok(Date.now() - started < 1000, 'without waiting for the work')
})

t.test("the work fails in time: its failure is the caller's", async (t) => {
  await t.rejects(
    within(Promise.reject(new Error('boom')), 1000, () => 'late'),
    /boom/,
  )
})
