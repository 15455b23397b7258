// A job's versions: a changed spec is the next version, the one it replaces goes into the record's
// history (newest last, at most JOB_HISTORY_KEEP, fewer when the record would outgrow the store's limit).
import t from 'tap'
import { type JobValue, jobCodec, jobOf, submitted } from '../../../src/scheduler/records.js'
import { canonicalJson, MAX_VALUE_BYTES } from '../../../src/store/record.js'
import { JOB_HISTORY_KEEP } from '../../../src/store/schemas.js'
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
    Array.from({ length: JOB_HISTORY_KEEP }, (_, i) => 10 + i),
    `the last ${JOB_HISTORY_KEEP} before the current one`,
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

t.test('jobs/ decodes only a valid spec named as its key, and encodes only such', async (t) => {
  const v1 = submitted(undefined, spec(1), 't1') as JobValue
  const rec = (key: string, value: unknown) => ({ key, owner: 'P1', value: value as JsonValue })
  t.same(jobCodec.decode(rec('jobs/j', v1)), { ok: true, value: v1 })
  t.same(jobOf(rec('jobs/j', v1) as never), v1, 'jobOf reads through the codec')
  const refused: [RegExp, string, unknown][] = [
    [/the spec is named j, the key says jobs\/k/, 'jobs/k', v1],
    [/spec\.groups\.0\.count/, 'jobs/j', { ...v1, spec: spec(-1) }],
    [/\/version/, 'jobs/j', { ...v1, version: 0 }],
    [/\/history/, 'jobs/j', { ...v1, history: Array.from({ length: JOB_HISTORY_KEEP + 1 }, () => v1) }],
    [/\/spec/, 'jobs/j', { ...v1, spec: 'j' }],
  ]
  for (const [why, key, value] of refused) {
    const d = jobCodec.decode(rec(key, value))
    t.equal(d.ok, false, `refused: ${why}`)
    if (!d.ok) t.match(d.reason, why)
  }
  t.throws(() => jobCodec.encode({ ...v1, version: 0 }), { code: 'PLX_STORE_BAD_VALUE' })
})
