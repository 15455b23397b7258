// A failed allocation's slot is placed again after a delay that doubles, up
// to a number of attempts in a window: never a silent retry loop.
import t from 'tap'
import { ownerPlan } from '../../../src/scheduler/owner-plan.js'
import type { AllocStateValue, AllocStatus, AllocValue, JobValue } from '../../../src/scheduler/records.js'
import {
  type ReschedulePolicy,
  rescheduleDecision,
  resolveReschedule,
} from '../../../src/scheduler/reschedule.js'
import { claimsOf } from '../../../src/scheduler/settle.js'
import type { GroupSpec } from '../../../src/scheduler/spec.js'
import { group, host, job } from './fixtures.js'

const policy: ReschedulePolicy = {
  attempts: 2,
  intervalMs: 60_000,
  delayMs: 1000,
  maxDelayMs: 3000,
  unlimited: false,
}

t.test('decision: delay doubling from the failure, attempts counted in a window', async (t) => {
  t.same(rescheduleDecision(policy, 10_000, undefined, 10_500), {
    kind: 'wait',
    until: 11_000,
    tracker: { attempt: 1, since: 10_000 },
  })
  t.same(rescheduleDecision(policy, 10_000, undefined, 11_000), {
    kind: 'place',
    tracker: { attempt: 1, since: 10_000 },
  })
  t.same(
    rescheduleDecision(policy, 20_000, { attempt: 1, since: 10_000 }, 21_000),
    { kind: 'wait', until: 22_000, tracker: { attempt: 2, since: 10_000 } },
    'the second failure in the window waits twice as long',
  )
  const third = rescheduleDecision(policy, 30_000, { attempt: 2, since: 10_000 }, 99_000)
  t.equal(third.kind, 'exhausted', 'a third failure within 60 s: given up')
  t.match(third.kind === 'exhausted' ? third.reason : '', /after 2 reschedule\(s\) within 60 s/)
  t.same(
    rescheduleDecision(policy, 70_000, { attempt: 2, since: 10_000 }, 71_000),
    { kind: 'place', tracker: { attempt: 1, since: 70_000 } },
    'a failure after the window opens a new one',
  )
  const unlimited = { ...policy, unlimited: true }
  t.same(
    rescheduleDecision(unlimited, 30_000, { attempt: 40, since: 10_000 }, 30_000),
    { kind: 'wait', until: 33_000, tracker: { attempt: 41, since: 10_000 } },
    'unlimited: never given up, the delay capped at maxDelayMs',
  )
})

t.test('policy: defaults per job type, a given count bounds the retries', async (t) => {
  t.same(resolveReschedule(undefined, 'service'), {
    unlimited: true,
    attempts: 0,
    intervalMs: 3_600_000,
    delayMs: 30_000,
    maxDelayMs: 3_600_000,
  })
  t.same(resolveReschedule(undefined, 'batch'), {
    unlimited: false,
    attempts: 1,
    intervalMs: 86_400_000,
    delayMs: 5_000,
    maxDelayMs: 5_000,
  })
  t.equal(resolveReschedule({ attempts: 3 }, 'service').unlimited, false, 'attempts given: bounded')
  t.equal(resolveReschedule({ attempts: 3, unlimited: true }, 'service').unlimited, true)
  t.equal(resolveReschedule({ delayMs: 7_200_000 }, 'batch').maxDelayMs, 7_200_000, 'max ≥ the first delay')
})

const hosts = [host('h1', { zone: 'a' }), host('h2', { zone: 'a' }), host('h3', { zone: 'b' })]
const reschedule: GroupSpec['reschedule'] = { attempts: 1, intervalMs: 60_000, delayMs: 1000 }
const jobOf = (version = 1, stopped = false): JobValue => ({
  spec: job([group('g', 1, { reschedule })], { name: 'web' }),
  version,
  submittedAt: '2026-12-02T00:00:00Z',
  stopped,
})
const failed = (a: AllocValue, at: number, status: AllocStatus = 'failed'): AllocStateValue => ({
  ...a,
  status,
  reason: 'exit code 1',
  updatedAt: at,
})
const plan = (
  job: JobValue,
  now: number,
  allocs: { owner: string; alloc: AllocValue }[],
  states: AllocStateValue[],
) => ownerPlan({ self: 'peer-h1', job, hosts, claims: claimsOf(allocs, states).values(), now })

t.test('owner plan: a failed slot waits, is placed again carrying the count, then given up', async (t) => {
  const first = plan(jobOf(), 1000, [], []).puts[0] as AllocValue
  t.ok(first, 'placed')
  const mine = (alloc: AllocValue) => [{ owner: 'peer-h1', alloc }]

  const waiting = plan(jobOf(), 2500, mine(first), [failed(first, 2000)])
  t.same(waiting.puts, [], 'not placed again within the delay')
  t.same(waiting.deletes, [], 'the failed record is kept: its host keeps its state and reason visible')
  t.equal(waiting.deferred.get('g/0')?.until, 3000, 'waits until 1 s after the failure')

  const again = plan(jobOf(), 3000, mine(first), [failed(first, 2000)])
  const second = again.puts[0] as AllocValue
  t.equal(again.puts.length, 1, 'placed again once the delay passed')
  t.not(second.id, first.id, 'a new allocation')
  t.same(second.reschedule, { attempt: 1, since: 2000 }, 'carrying its place in the run of failures')
  t.same(again.deletes, [], 'it overwrites the failed record of its slot')

  const exhausted = plan(jobOf(), 60_000, mine(second), [failed(second, 5000, 'lost')])
  t.same(exhausted.puts, [], 'a second failure within the window is not placed again (attempts: 1)')
  t.same(exhausted.deletes, [], 'the failed allocation stays on record')
  t.match(exhausted.deferred.get('g/0')?.reason, /failed after 1 reschedule\(s\) within 60 s/)

  const orphan = plan(jobOf(), 60_000, [], [failed(second, 5000)])
  t.same(
    orphan.puts.map((a) => a.id),
    [second.id],
    'a new owner adopts the record of a given-up slot, so the count is not lost',
  )
  t.notOk('status' in (orphan.puts[0] ?? {}), 'as alloc fields only')

  const changed = plan(jobOf(2), 60_000, mine(second), [failed(second, 5000)])
  t.equal(changed.puts.length, 1, 'a new version of the job starts afresh')
  t.equal(changed.puts[0]?.jobVersion, 2)
  t.equal(changed.puts[0]?.reschedule, undefined, 'with no count')

  const stopped = plan(jobOf(1, true), 60_000, mine(second), [failed(second, 5000)])
  t.same(stopped.deletes, ['g/0'], 'a stopped job drops the record')
})

t.test('owner plan: a refusal between failures does not reset the count', async (t) => {
  const refused: AllocValue = {
    id: 'web-g-r',
    job: 'web',
    jobVersion: 1,
    group: 'g',
    slot: '0',
    host: 'peer-h2',
    hostName: 'h2',
    resources: { cpu: 100, memoryMb: 64 },
    createdAt: 4000,
    reschedule: { attempt: 1, since: 2000 },
  }
  const p = plan(
    jobOf(),
    6000,
    [{ owner: 'peer-h1', alloc: refused }],
    [{ ...refused, status: 'rejected', reason: 'memory', updatedAt: 4500 }],
  )
  t.equal(p.puts.length, 1, 'placed again at once (a refusal is not a failure)')
  t.same(p.puts[0]?.reschedule, { attempt: 1, since: 2000 }, 'the count carried on')
})
