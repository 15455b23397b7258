// The exec driver on the real kernel, without an agent: a task in a throwaway
// network namespace, its own mount namespace, a busybox root filesystem, as
// nobody, in cgroups with limits; the memory limit hit is reported as such;
// a task flooding its output keeps its logs under the bound; a second driver
// (a restarted agent) adopts a running task and never signals a process
// that is not the task's. Everything is removed in teardown.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { isAlive, procStartTime } from '../../../src/lib/proc.js'
import type { TaskHandle, TaskLaunch } from '../../../src/runner/driver.js'
import { Cgroups } from '../../../src/runner/exec/cgroups.js'
import { ExecDriver } from '../../../src/runner/exec/driver.js'
import { logFiles, readLogs } from '../../../src/runner/logs.js'
import { tempNetns } from '../datapath/tempns.js'

t.setTimeout(120_000)
const ns = tempNetns(t, 'run')
const dir = mkdtempSync('/tmp/plexus-exec-')
const cgroups = Cgroups.detect()
const drv = new ExecDriver(cgroups)
const allocId = `t-exec-${randomBytes(4).toString('hex')}`
const launches: TaskLaunch[] = []
t.teardown(async () => {
  for (const l of launches) await drv.destroy(l)
  rmSync(dir, { recursive: true, force: true })
})

const launch = (task: string, command: string[], extra: Partial<TaskLaunch> = {}): TaskLaunch => {
  const l: TaskLaunch = {
    allocId,
    task,
    command,
    env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
    resources: { cpu: 200, memoryMb: 32, pids: 64 },
    netns: ns.path,
    dir: join(dir, task),
    logs: { maxBytes: 4096, files: 3 },
    ...extra,
  }
  launches.push(l)
  return l
}

/** the task ended and its supervisor, the last writer of its logs, too */
const untilExit = async (l: TaskLaunch, h: TaskHandle) => {
  t.ok(await drv.wait(l, h, 20_000), `${l.task} ended`)
  const deadline = Date.now() + 10_000
  while (isAlive(h.supervisor.pid, h.supervisor.startTime) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20))
  return drv.inspect(l, h)
}

const link = (kind: string, pid: number | string) =>
  execFileSync('readlink', [`/proc/${pid}/ns/${kind}`], { encoding: 'utf8' }).trim()

/**
 * The pid is recorded before the exec chain (env, unshare, nsenter) has run: the namespaces are
 * the task's once its own command runs, and `exec <comm>` is the last step of that command.
 */
const reached = async (t: Test, h: TaskHandle, comm: string) => {
  const now = () => readFileSync(`/proc/${h.pid}/comm`, 'utf8').trim()
  const deadline = Date.now() + 10_000
  while (now() !== comm && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal(now(), comm, 'the task reached its own command')
}

const LIMITS = { timeoutMs: 10_000, maxOutputBytes: 1 << 20 }

t.test('namespaces, rootfs, user and limits', async (t) => {
  // a root filesystem of one static busybox
  const root = join(dir, 'rootfs')
  mkdirSync(join(root, 'bin'), { recursive: true })
  mkdirSync(join(root, 'etc'), { recursive: true })
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'))
  for (const a of ['sh', 'cat', 'id', 'ls', 'sleep']) symlinkSync('busybox', join(root, 'bin', a))
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\nworker:x:4321:4321::/:/bin/sh\n')
  writeFileSync(join(root, 'marker'), 'inside the rootfs\n')
  const l = launch('web', ['sh', '-c', 'id; cat /marker; exec sleep 60'], {
    rootfs: root,
    user: 'worker',
    env: { PATH: '/bin' },
  })
  const h = await drv.start(l)
  t.teardown(() => drv.stop(l, h, 0))
  t.same(await drv.inspect(l, h), { state: 'running' })
  await reached(t, h, 'sleep')
  t.equal(
    link('net', h.pid),
    execFileSync('ip', ['netns', 'exec', ns.name, 'readlink', '/proc/self/ns/net'], {
      encoding: 'utf8',
    }).trim(),
    'in the given network namespace',
  )
  t.not(link('mnt', h.pid), link('mnt', 'self'), 'in a mount namespace of its own')
  const status = readFileSync(`/proc/${h.pid}/status`, 'utf8')
  t.match(status, /^Uid:\s+4321\s+4321/m, 'as the rootfs user worker')
  t.match(status, /^Groups:\s*$/m, 'no supplementary groups kept from root')
  const dirs = cgroups.dirs(allocId, 'web')
  for (const d of Object.values(dirs))
    t.match(readFileSync(join(d, 'cgroup.procs'), 'utf8'), new RegExp(`^${h.pid}$`, 'm'), `in ${d}`)
  if (cgroups.layout.version === 1) {
    t.equal(
      readFileSync(join(dirs.memory as string, 'memory.limit_in_bytes'), 'utf8').trim(),
      String(32 * 2 ** 20),
    )
    t.equal(readFileSync(join(dirs.cpu as string, 'cpu.cfs_quota_us'), 'utf8').trim(), '20000')
    t.equal(readFileSync(join(dirs.pids as string, 'pids.max'), 'utf8').trim(), '64')
  }
  await new Promise((r) => setTimeout(r, 300))
  t.match(
    await readLogs(l.dir + '/logs'),
    /uid=4321.*\ninside the rootfs\n/,
    'saw the rootfs as /, output captured',
  )

  // exec enters the task: its rootfs as /, its user
  t.match(
    await drv.exec(l, h, ['sh', '-c', 'cat /marker; id -u'], LIMITS),
    { exitCode: 0, stdout: 'inside the rootfs\n4321\n', stderr: '', truncated: false, timedOut: false },
    "exec sees the task's rootfs, as the task's user",
  )
  await t.rejects(
    drv.exec(l, h, ['ip', 'addr'], LIMITS),
    { code: 'PLX_RUNNER_NO_COMMAND' },
    'resolved in the rootfs',
  )

  // a second driver is what a restarted agent has: it adopts from the handle alone
  const again = new ExecDriver(Cgroups.detect())
  t.same(await again.inspect(l, h), { state: 'running' }, 'adopted by a new driver')
  // a recorded pid now used by another process (pid reuse): the start time differs, so it is left alone
  const other = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => other.kill('SIGKILL'))
  const otherPid = other.pid as number
  const forged: TaskHandle = {
    ...h,
    pid: otherPid,
    startTime: (procStartTime(otherPid) as number) + 1,
    supervisor: { pid: otherPid, startTime: 1 },
  }
  await again.stop(launch('ghost', ['sleep']), forged, 100)
  t.ok(
    isAlive(otherPid, procStartTime(otherPid) as number),
    'a process whose start time does not match the handle is never signalled',
  )
  t.same(await drv.inspect(l, h), { state: 'running' }, 'nor is the task of another handle')
  await again.stop(l, h, 2000)
  t.match(
    await drv.inspect(l, h),
    { state: 'exited', signal: 'SIGTERM' },
    'stopped by SIGTERM within the grace',
  )
  await drv.destroy(l)
  for (const d of Object.values(dirs)) t.notOk(existsSync(d), `${d} removed`)
})

t.test('bad input: missing binary, bad rootfs, unknown user', async (t) => {
  await t.rejects(drv.start(launch('nobin', ['no-such-binary-x'])), { code: 'PLX_RUNNER_NO_COMMAND' })
  await t.rejects(drv.start(launch('noroot', ['sh'], { rootfs: join(dir, 'missing') })), {
    code: 'PLX_RUNNER_BAD_ROOTFS',
  })
  await t.rejects(drv.start(launch('nouser', ['sh'], { user: 'no-such-user-x' })), {
    code: 'PLX_RUNNER_BAD_USER',
  })
})

t.test('memory limit hit: killed, and said so', async (t) => {
  // busybox sh grows a variable past 16 MiB
  const l = launch(
    'hog',
    ['sh', '-c', 'x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while :; do x=$x$x; done'],
    {
      resources: { cpu: 1000, memoryMb: 16, pids: 16 },
    },
  )
  const h = await drv.start(l)
  const seen = await untilExit(l, h)
  t.match(seen, { state: 'exited', signal: 'SIGKILL', reason: /memory limit hit \(16 MiB\)/ })
})

t.test('a task flooding its output stays within the log bound', async (t) => {
  const l = launch('flood', [
    'sh',
    '-c',
    'i=0; while [ $i -lt 20000 ]; do echo "line $i of output padding padding padding"; i=$((i+1)); done',
  ])
  const h = await drv.start(l)
  const seen = await untilExit(l, h)
  t.match(seen, { state: 'exited', exitCode: 0 })
  const files = await logFiles(join(l.dir, 'logs'))
  const total = files.reduce((n, f) => n + statSync(f).size, 0)
  t.ok(files.length <= 3, `${files.length} files kept (bound 3)`)
  t.ok(total <= 3 * 4096, `${total} bytes kept (bound ${3 * 4096}); the task wrote ~900 KB`)
  t.match(
    await readLogs(join(l.dir, 'logs'), 2),
    /^line 19998 .*\nline 19999 .*\n$/,
    'the tail is the newest output',
  )
  t.ok(readdirSync(join(l.dir, 'logs')).includes('current'))
})

t.test('exec: a command in a running task, its output, limits and end', async (t) => {
  const l = launch('sh-task', ['sleep', '60'], { env: { PATH: '/usr/bin:/bin', GREETING: 'from the task' } })
  const h = await drv.start(l)
  t.teardown(() => drv.stop(l, h, 0))
  await reached(t, h, 'sleep')

  const ns = await drv.exec(
    l,
    h,
    ['sh', '-c', 'readlink /proc/self/ns/net /proc/self/ns/mnt; echo "$GREETING"'],
    LIMITS,
  )
  t.equal(
    ns.stdout,
    `${link('net', h.pid)}\n${link('mnt', h.pid)}\nfrom the task\n`,
    "the task's network and mount namespaces, its environment",
  )
  t.not(link('mnt', h.pid), link('mnt', 'self'), "(the task's mount namespace is not the host's)")

  const cg = await drv.exec(l, h, ['cat', '/proc/self/cgroup'], LIMITS)
  for (const [controller, dir] of Object.entries(cgroups.dirs(allocId, 'sh-task'))) {
    const rel = dir.slice((cgroups.layout.mounts as Record<string, string>)[controller]?.length ?? 0)
    t.match(cg.stdout, new RegExp(`:${rel}$`, 'm'), `in the task's ${controller} cgroup`)
  }

  t.same(
    await drv.exec(l, h, ['sh', '-c', 'echo out; echo err >&2; exit 3'], LIMITS),
    { exitCode: 3, stdout: 'out\n', stderr: 'err\n', truncated: false, timedOut: false },
    'exit status and both streams',
  )

  const flood = await drv.exec(l, h, ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x'], {
    timeoutMs: 10_000,
    maxOutputBytes: 1000,
  })
  t.match(flood, { exitCode: 0, truncated: true, timedOut: false }, 'a flood is truncated')
  t.equal(flood.stdout, 'x'.repeat(1000), 'its first bytes are kept')

  const started = Date.now()
  const slow = await drv.exec(l, h, ['sh', '-c', 'echo $$; sleep 100'], {
    timeoutMs: 1000,
    maxOutputBytes: 1000,
  })
  t.match(slow, { timedOut: true, signal: 'SIGKILL', exitCode: 137 }, 'a timeout kills it')
  t.ok(Date.now() - started < 5000, `back in ${Date.now() - started} ms`)
  const pgid = Number(slow.stdout.trim())
  const inGroup = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
          return fields[0] !== 'Z' && Number(fields[2]) === pgid
        } catch {
          return false
        }
      })
  // the pipes close as the killed processes release their files, a moment before they are zombies
  const gone = Date.now() + 2000
  while (inGroup().length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 20))
  t.same(inGroup(), [], `nothing of process group ${pgid} is left (the sleep included)`)
  t.same(await drv.inspect(l, h), { state: 'running' }, 'the task itself runs on')

  await t.rejects(drv.exec(l, h, ['no-such-binary-x'], LIMITS), { code: 'PLX_RUNNER_NO_COMMAND' })
  await drv.stop(l, h, 1000)
  await t.rejects(drv.exec(l, h, ['true'], LIMITS), {
    code: 'PLX_RUNNER_TASK_NOT_RUNNING',
    details: { status: 409 },
  })
})
