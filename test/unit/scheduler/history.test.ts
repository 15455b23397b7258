// A job's versions: a changed spec is the next version, the one it replaces goes into the record's
// history (newest last, at most HISTORY_KEEP, fewer when the record would outgrow the store's limit).
import t from 'tap'
import { HISTORY_KEEP, type JobValue, submitted } from '../../../src/scheduler/records.js'
import { canonicalJson, MAX_VALUE_BYTES } from '../../../src/store/record.js'
import type { JsonValue } from '../../../src/store/types.js'
import { group, job } from './fixtures.js'

const spec = (count: number, env = '') =>
  job(
    [group('g', count, env ? { tasks: [{ ...group('g', 1).tasks[0]!, config: { env: { X: env } } }] } : {})],
    {
      name: 'j',
    },
  )

t.test('versions: a change is the next version, the old one goes into history', async (t) => {
  const v1 = submitted(undefined, spec(1), 't1') as JobValue
  t.same([v1.version, v1.history], [1, undefined])
  t.equal(submitted(v1, spec(1), 't2'), undefined, 'the same spec again: nothing to write')
  const v2 = submitted(v1, spec(2), 't2') as JobValue
  t.same([v2.version, v2.history?.map((h) => [h.version, h.submittedAt])], [2, [[1, 't1']]])
  const restarted = submitted({ ...v2, stopped: true }, spec(2), 't3') as JobValue
  t.same(
    [restarted.version, restarted.stopped, restarted.history?.length],
    [2, false, 1],
    'a stopped job run again',
  )
  let v = v2
  for (let i = 3; i <= 20; i++) v = submitted(v, spec(i), `t${i}`) as JobValue
  t.equal(v.version, 20)
  t.same(
    v.history?.map((h) => h.version),
    Array.from({ length: HISTORY_KEEP }, (_, i) => 10 + i),
    `the last ${HISTORY_KEEP} before the current one`,
  )
})

t.test('history gives way to the store value limit, oldest first', async (t) => {
  const big = 'x'.repeat(20_000)
  let v = submitted(undefined, spec(1, big), 't1') as JobValue
  for (let i = 2; i <= 5; i++) v = submitted(v, spec(i, big), `t${i}`) as JobValue
  t.ok(canonicalJson(v as unknown as JsonValue).length <= MAX_VALUE_BYTES, 'the record fits')
  t.same(
    v.history?.map((h) => h.version),
    [3, 4],
    'the versions that fit, newest kept',
  )
})
