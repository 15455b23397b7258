// The podman driver on the real kernel, without an agent (podman with private
// storage, a busybox rootfs, a throwaway namespace): the task's own problems
// come back as typed errors before podman runs (no podman, a bad rootfs, a
// command or user the rootfs lacks); a container runs as the rootfs user with
// its cpu and pids limits, the resolv.conf given, the task's environment; a
// timed-out exec is cut short; stop gives the grace before SIGKILL; destroy
// leaves no container.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { isAlive } from '../../../src/lib/proc.js'
import type { TaskLaunch } from '../../../src/runner/driver.js'
import { PodmanDriver } from '../../../src/runner/podman/driver.js'
import { busyboxRootfs } from '../../helpers/podman.js'
import { tempNetns } from '../datapath/tempns.js'

t.setTimeout(300_000)

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const missing = ['podman', 'runc', 'conmon', 'busybox', 'multilog'].filter((c) => !has(c))

const dir = mkdtempSync('/tmp/plexus-podman-driver-')
const storage = { root: join(dir, 'proot'), runroot: join(dir, 'prun') }
const drv = new PodmanDriver(storage)
const allocId = `t-pm-${randomBytes(4).toString('hex')}`
const launches: TaskLaunch[] = []
t.teardown(async () => {
  for (const l of launches) await drv.destroy(l).catch(() => undefined)
  spawnSync('podman', ['--root', storage.root, '--runroot', storage.runroot, 'system', 'reset', '-f'])
  rmSync(dir, { recursive: true, force: true })
})

const launch = (task: string, extra: Partial<TaskLaunch>): TaskLaunch => {
  const l: TaskLaunch = {
    allocId,
    task,
    command: ['sleep', '60'],
    env: { PATH: '/bin' },
    resources: { cpu: 200, memoryMb: 32, pids: 64 },
    netns: '/run/netns/none',
    dir: join(dir, task),
    logs: { maxBytes: 4096, files: 3 },
    ...extra,
  }
  launches.push(l)
  return l
}

const LIMITS = { timeoutMs: 10_000, maxOutputBytes: 1 << 20 }

t.test('the task’s own problems, each with its code, before podman runs', async (t) => {
  const rootfs = busyboxRootfs(join(dir, 'bad'), ['sh']) || '/nonexistent'
  await t.rejects(new PodmanDriver({ binary: '/nonexistent/podman' }).start(launch('nopodman', { rootfs })), {
    code: 'PLX_RUNNER_NO_PODMAN',
  })
  await t.rejects(drv.start(launch('noroot', { rootfs: join(dir, 'missing') })), {
    code: 'PLX_RUNNER_BAD_ROOTFS',
  })
  await t.rejects(drv.start(launch('nocmd', { rootfs, command: ['no-such-binary-x'] })), {
    code: 'PLX_RUNNER_NO_COMMAND',
  })
  await t.rejects(drv.start(launch('nouser', { rootfs, command: ['sh'], user: 'no-such-user-x' })), {
    code: 'PLX_RUNNER_BAD_USER',
  })
})

t.test(
  'a container as the rootfs user, with its limits, env and resolv.conf; exec, stop, destroy',
  { skip: missing.length ? `not installed: ${missing.join(', ')}` : false },
  async (t) => {
    const ns = tempNetns(t, 'pm')
    mkdirSync(join(dir, 'good'))
    const rootfs = busyboxRootfs(join(dir, 'good'), ['sh', 'sleep', 'id', 'cat', 'echo']) as string
    mkdirSync(join(rootfs, 'etc'))
    writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\nworker:x:4321:4321::/:/bin/sh\n')
    const resolvConf = join(dir, 'resolv.conf')
    writeFileSync(resolvConf, 'nameserver 10.99.0.1\nsearch svc.plexus.internal\n')
    const l = launch('web', {
      rootfs,
      user: 'worker',
      netns: ns.path,
      resolvConf,
      env: { PATH: '/bin', GREETING: 'from the task' },
      // TERM is trapped: the end shows whether the grace was given
      command: ['sh', '-c', 'echo $GREETING; trap "exit 3" TERM; while :; do sleep 1; done'],
    })
    const h = await drv.start(l)
    t.same(await drv.inspect(l, h), { state: 'running' })
    const status = readFileSync(`/proc/${h.pid}/status`, 'utf8')
    t.match(status, /^Uid:\s+4321\s+4321/m, 'as the rootfs user worker')
    const cg = readFileSync(`/proc/${h.pid}/cgroup`, 'utf8')
    const path = (c: string) => new RegExp(`^\\d+:${c}:(.*)$`, 'm').exec(cg)?.[1]
    t.equal(
      readFileSync(`/sys/fs/cgroup/cpu${path('cpu')}/cpu.cfs_quota_us`, 'utf8').trim(),
      '20000',
      '200 m',
    )
    t.equal(readFileSync(`/sys/fs/cgroup/pids${path('pids')}/pids.max`, 'utf8').trim(), '64', 'pids')
    t.equal(
      readlinkSync(`/proc/${h.pid}/ns/net`),
      spawnSync('ip', ['netns', 'exec', ns.name, 'readlink', '/proc/self/ns/net']).stdout.toString().trim(),
      'in the given network namespace',
    )
    t.match(
      await drv.exec(l, h, ['sh', '-c', 'cat /etc/resolv.conf; echo $GREETING; id -u'], LIMITS),
      { exitCode: 0, stdout: 'nameserver 10.99.0.1\nsearch svc.plexus.internal\nfrom the task\n4321\n' },
      'exec: its resolv.conf, environment and user',
    )
    const started = Date.now()
    const slow = await drv.exec(l, h, ['sleep', '100'], { timeoutMs: 1000, maxOutputBytes: 100 })
    t.match(slow, { timedOut: true }, 'a timed-out exec is cut short')
    t.ok(Date.now() - started < 10_000, `back in ${Date.now() - started} ms`)
    t.match(readFileSync(join(l.dir, 'logs/current'), 'utf8'), /^from the task\n/, 'output in its logs')
    t.notOk(
      existsSync(join(rootfs, 'proc')),
      'the rootfs directory is untouched (podman wrote to its overlay)',
    )

    await drv.stop(l, h, 5000)
    t.match(await drv.inspect(l, h), { state: 'exited', exitCode: 3 }, 'SIGTERM within the grace, trapped')
    t.notOk(isAlive(h.supervisor.pid, h.supervisor.startTime), 'its supervisor (multilog) ended')
    await drv.destroy(l)
    t.same(await drv.inspect(l, h), { state: 'gone' }, 'destroy leaves no container')
    await drv.destroy(l)
  },
)
