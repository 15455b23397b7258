// The runner's pure decisions: what a task's end means under each restart
// policy, the backoff, and an allocation's status from its tasks.
import t from 'tap'
import type { TaskHandle } from '../../../src/runner/driver.js'
import {
  afterEnd,
  allocSummary,
  backoffMs,
  newTask,
  nextAction,
  resolvePolicy,
  STABLE_RUN_MS,
  type TaskRecord,
} from '../../../src/runner/lifecycle.js'

const handle = (startedAt: number): TaskHandle => ({
  pid: 100,
  startTime: 5,
  supervisor: { pid: 99, startTime: 4 },
  startedAt,
})
const running = (startedAt = 0, extra: Partial<TaskRecord> = {}): TaskRecord => ({
  name: 'web',
  state: 'running',
  restarts: 0,
  streak: 0,
  handle: handle(startedAt),
  ...extra,
})
const exited = (exitCode: number, signal?: string) =>
  ({ kind: 'exited', exitCode, ...(signal ? { signal } : {}) }) as const

t.test('never: an exit is final, success complete, failure failed with its reason', async (t) => {
  const p = resolvePolicy({ policy: 'never' })
  t.match(afterEnd(running(), exited(0), p, 1000), { state: 'complete', exitCode: 0, restarts: 0 })
  const f = afterEnd(running(), exited(3), p, 1000)
  t.match(f, { state: 'failed', exitCode: 3, reason: 'exit code 3' })
  t.notOk(f.startAt, 'no restart scheduled')
  t.match(afterEnd(running(), exited(137, 'SIGKILL'), p, 1000), {
    state: 'failed',
    reason: 'killed by SIGKILL',
  })
})

t.test('on-failure: failures restart up to attempts with doubling delay, success ends it', async (t) => {
  const p = resolvePolicy({ policy: 'on-failure', attempts: 2, delayMs: 100, maxDelayMs: 150 })
  t.match(afterEnd(running(), exited(0), p, 1000), { state: 'complete' }, 'exit 0 is not restarted')
  const r1 = afterEnd(running(900), exited(1), p, 1000)
  t.match(r1, { state: 'pending', restarts: 1, streak: 1, startAt: 1100, reason: 'exit code 1' })
  t.same(nextAction(r1, 1099), { kind: 'wait', untilMs: 1100 }, 'not before the delay')
  t.same(nextAction(r1, 1100), { kind: 'start' }, 'started once it passed')
  const r2 = afterEnd({ ...r1, state: 'running', handle: handle(1100) }, exited(1), p, 1200)
  t.match(
    r2,
    { state: 'pending', restarts: 2, streak: 2, startAt: 1200 + 150 },
    'second delay doubled, capped at maxDelayMs',
  )
  const r3 = afterEnd({ ...r2, state: 'running', handle: handle(1400) }, exited(1), p, 1500)
  t.match(
    r3,
    { state: 'failed', restarts: 2, reason: 'exit code 1 (after 2 restarts)' },
    'attempts spent: failed, with the count',
  )
})

t.test('always: exits of any kind restart; attempts bound it only when given', async (t) => {
  const p = resolvePolicy({ policy: 'always' })
  t.equal(p.attempts, Number.POSITIVE_INFINITY)
  let rec = running()
  for (let i = 0; i < 50; i++) {
    rec = afterEnd(rec, exited(i % 2), p, 1000 + i)
    t.equal(rec.state, 'pending')
    rec = { ...rec, state: 'running', handle: handle(1000 + i) }
  }
  t.equal(rec.restarts, 50, 'every end counted')
  const bounded = resolvePolicy({ policy: 'always', attempts: 1 })
  const once = afterEnd(running(), exited(0), bounded, 10)
  t.equal(once.state, 'pending')
  t.equal(
    afterEnd({ ...once, state: 'running', handle: handle(10) }, exited(0), bounded, 20).state,
    'complete',
  )
})

t.test('a run of STABLE_RUN_MS resets the backoff', async (t) => {
  const p = resolvePolicy({ policy: 'always', delayMs: 100, maxDelayMs: 10_000 })
  const short = afterEnd(running(0, { streak: 5, restarts: 5 }), exited(1), p, 500)
  t.equal(short.startAt, 500 + backoffMs(p, 5), 'short run: the streak grows the delay')
  t.equal(backoffMs(p, 5), 3200)
  const long = afterEnd(running(0, { streak: 5, restarts: 5 }), exited(1), p, STABLE_RUN_MS)
  t.equal(long.startAt, STABLE_RUN_MS + 100, 'long run: back to delayMs')
  t.equal(long.streak, 1)
})

t.test('defaults: on-failure, 3 attempts, 1 s doubling to 30 s', async (t) => {
  t.same(resolvePolicy(undefined), { policy: 'on-failure', attempts: 3, delayMs: 1000, maxDelayMs: 30_000 })
  t.equal(backoffMs(resolvePolicy(undefined), 10), 30_000)
})

t.test(
  'a start the driver refused follows the policy with its reason; a vanished process is lost',
  async (t) => {
    const p = resolvePolicy({ policy: 'on-failure', attempts: 1, delayMs: 10 })
    const fresh = newTask('web', 0)
    const reason = 'command "nope" not found in PATH (/bin)'
    const r1 = afterEnd(fresh, { kind: 'start-failed', reason }, p, 0)
    t.match(r1, { state: 'pending', restarts: 1, reason })
    const r2 = afterEnd(r1, { kind: 'start-failed', reason }, p, 20)
    t.match(r2, { state: 'failed', reason: `${reason} (after 1 restart)` })
    t.equal(r2.exitCode, undefined, 'no exit code for a process that never ran')
    const never = resolvePolicy({ policy: 'never' })
    t.match(afterEnd(running(), { kind: 'gone' }, never, 5), { state: 'lost', reason: /no exit status/ })
  },
)

t.test('allocation status from its tasks', async (t) => {
  const task = (name: string, state: TaskRecord['state'], extra: Partial<TaskRecord> = {}): TaskRecord => ({
    name,
    state,
    restarts: 0,
    streak: 0,
    ...extra,
  })
  t.match(allocSummary([task('a', 'pending')], false, 'network: no lease'), {
    status: 'pending',
    reason: 'network: no lease',
  })
  t.match(allocSummary([task('a', 'pending'), task('b', 'running')], true), { status: 'starting' })
  t.match(allocSummary([task('a', 'running'), task('b', 'running', { restarts: 2 })], true), {
    status: 'running',
    restarts: 2,
  })
  t.match(allocSummary([task('a', 'complete', { exitCode: 0 }), task('b', 'running')], true), {
    status: 'running',
  })
  t.match(
    allocSummary([task('a', 'complete', { exitCode: 0 }), task('b', 'complete', { exitCode: 0 })], true),
    {
      status: 'complete',
      exitCode: 0,
    },
  )
  t.match(
    allocSummary(
      [task('a', 'running'), task('b', 'failed', { exitCode: 2, reason: 'exit code 2', restarts: 3 })],
      true,
    ),
    { status: 'failed', reason: 'task b: exit code 2', exitCode: 2, restarts: 3 },
    'one task failed for good fails the group',
  )
  t.match(allocSummary([task('a', 'lost', { reason: 'gone' })], true), { status: 'lost' })
  t.match(
    allocSummary([task('a', 'pending', { reason: 'exit code 1', restarts: 1 })], true),
    {
      status: 'starting',
      reason: 'task a: exit code 1',
    },
    'a restart pending says why',
  )
})
