// src/lib/spawn.ts through the real addon (dist/native/plexus_spawn.node):
// statuses, signals, the timeout, output capture, what a child inherits, and
// that a process left holding the output does not hold the result.
import t from 'tap'
import { run } from '../../../src/lib/spawn.js'

const o = { timeoutMs: 5000, maxOutput: 1000 }

t.test('exit status and output of stdout and stderr together', async (t) => {
  const r = await run('sh', ['-c', 'echo out; echo err >&2; exit 3'], o)
  t.same({ code: r.code, signal: r.signal, timedOut: r.timedOut }, { code: 3, signal: null, timedOut: false })
  t.equal(r.output, 'out\nerr\n')
  t.equal((await run('true', [], o)).code, 0, 'found in PATH')
})

t.test('a signal ends it: no code, the signal by name', async (t) => {
  const r = await run('sh', ['-c', 'kill -TERM $$'], o)
  t.same(
    { code: r.code, signal: r.signal, timedOut: r.timedOut },
    { code: null, signal: 'SIGTERM', timedOut: false },
  )
})

t.test('killed at the timeout', async (t) => {
  const started = performance.now()
  const r = await run('sleep', ['30'], { timeoutMs: 100, maxOutput: 10 })
  t.same({ signal: r.signal, timedOut: r.timedOut }, { signal: 'SIGKILL', timedOut: true })
  t.ok(performance.now() - started < 5000, 'within a few seconds, not the 30 of the program')
})

t.test('a program that cannot start rejects with its code', async (t) => {
  await t.rejects(run('plexus-no-such-program', [], o), { code: 'ENOENT', syscall: 'posix_spawnp' })
})

t.test('output is cut at maxOutput', async (t) => {
  const r = await run('sh', ['-c', 'head -c 5000 /dev/zero | tr "\\0" x'], {
    timeoutMs: 5000,
    maxOutput: 100,
  })
  t.equal(r.output, 'x'.repeat(100))
  t.equal(r.code, 0)
})

t.test('a process left behind holding the output does not hold the result', async (t) => {
  const started = performance.now()
  const r = await run('sh', ['-c', 'sleep 30 & echo started'], o)
  t.equal(r.code, 0)
  t.equal(r.output, 'started\n')
  t.ok(performance.now() - started < 5000, 'resolved after the exit, not after the sleep')
})

t.test('the child starts clean: stdin empty, no signal blocked, default dispositions', async (t) => {
  t.equal((await run('cat', [], o)).output, '', 'stdin is /dev/null')
  const status = (await run('cat', ['/proc/self/status'], o)).output
  t.match(status, /SigBlk:\s+0+\n/, 'nothing blocked')
  // 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID; below SIGRTMIN), which posix_spawn leaves as they are
  const ignored = BigInt(`0x${/SigIgn:\s+([0-9a-f]+)/.exec(status)?.[1]}`)
  t.equal(ignored & 0x7fffffffn, 0n, 'no standard signal ignored (Node ignores SIGPIPE)')
  // with SIGPIPE ignored, yes would complain of a broken pipe on stderr
  t.equal((await run('sh', ['-c', 'yes | head -n 1'], o)).output, 'y\n')
})

t.test('many at once each get their own result', async (t) => {
  const rs = await Promise.all(
    Array.from({ length: 20 }, (_, i) => run('sh', ['-c', `echo ${i}; exit ${i}`], o)),
  )
  t.same(
    rs.map((r) => [r.code, r.output]),
    rs.map((_, i) => [i, `${i}\n`]),
  )
})
