// The exec driver: the task is a process of this host, in the network
// namespace the runner attached, its own mount namespace, optionally chrooted
// into a root filesystem directory, as a given user, inside cgroups that
// bound its memory, cpu and process count. See ../README.md.
import { existsSync, statSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { PlexusError } from '../../lib/errors.js'
import { isAlive, procStartTime, signalOwn, sleep } from '../../lib/proc.js'
import {
  type Driver,
  type ExecLimits,
  type ExecResult,
  exitedWith,
  type Observed,
  oomKilled,
  type TaskHandle,
  type TaskLaunch,
  untilEnded,
} from '../driver.js'
import { endSupervisor, spawnSupervisor } from '../supervisor.js'
import { Cgroups } from './cgroups.js'
import { enterArgv, runEntered } from './enter.js'
import { checkRootfs, DEFAULT_PATH, resolveCommand, resolveUser, SUPERVISOR, taskArgv } from './launch.js'

/** how long start() waits for the supervisor to record the task's pid and the task to enter its namespace */
const START_TIMEOUT_MS = 10_000

/** the inode of a network namespace (its /run/netns file or a process's ns/net link), undefined when gone */
const netnsInode = (path: string): number | undefined => {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}

export class ExecDriver implements Driver {
  readonly name = 'exec'

  constructor(private readonly cgroups: Cgroups = Cgroups.detect()) {}

  async start(l: TaskLaunch): Promise<TaskHandle> {
    if (l.rootfs) checkRootfs(l.rootfs)
    // the task's templates are bound over the rootfs' /local: without one they would be nowhere to find
    if (l.rootfs && l.local && !statSync(join(l.rootfs, 'local'), { throwIfNoEntry: false })?.isDirectory())
      throw new PlexusError(
        'PLX_RUNNER_BAD_ROOTFS',
        `rootfs ${l.rootfs} has no /local directory for the task's templates`,
      )
    const command = resolveCommand(l.command[0] ?? '', l.env.PATH ?? DEFAULT_PATH, l.rootfs)
    const ids = l.user ? resolveUser(l.user, l.rootfs) : undefined
    await mkdir(join(l.dir, 'logs'), { recursive: true })
    // a new run: the previous run's pid and exit status must not be read as this one's
    await rm(join(l.dir, 'exit'), { force: true })
    await rm(join(l.dir, 'pid'), { force: true })
    await this.cgroups.create(l.allocId, l.task, l.resources)
    const supervisor = spawnSupervisor(
      SUPERVISOR,
      [l.dir, String(l.logs.maxBytes), String(l.logs.files), ...taskArgv(l, command, ids)],
      { PATH: DEFAULT_PATH, PLEXUS_CGROUP_PROCS: this.cgroups.procsFiles(l.allocId, l.task).join(' ') },
    )
    const deadline = Date.now() + START_TIMEOUT_MS
    const netns = netnsInode(l.netns)
    for (;;) {
      const pid = Number((await readFile(join(l.dir, 'pid'), 'utf8').catch(() => '')).trim())
      const startTime = pid > 0 ? procStartTime(pid) : undefined
      // running means in its namespace: the pid is recorded before its chain (env, unshare, nsenter)
      // has exec'd through to the setns, and whoever reads the handle then must find it inside
      if (pid > 0 && startTime !== undefined && netnsInode(`/proc/${pid}/ns/net`) === netns)
        return {
          pid,
          startTime,
          supervisor,
          startedAt: Date.now(),
        }
      // the task may have come and gone already: its exit status says so
      if (existsSync(join(l.dir, 'exit')) && pid > 0)
        return {
          pid,
          startTime: -1,
          supervisor,
          startedAt: Date.now(),
        }
      if (existsSync(join(l.dir, 'exit')) || Date.now() > deadline) {
        const code = (await readFile(join(l.dir, 'exit'), 'utf8').catch(() => '')).trim()
        throw new PlexusError(
          'PLX_RUNNER_START_FAILED',
          code === '125'
            ? 'could not join the task cgroups'
            : `the task did not start (supervisor exit ${code || 'none'})`,
        )
      }
      await sleep(10)
    }
  }

  async inspect(l: TaskLaunch, h: TaskHandle): Promise<Observed> {
    const exit = (await readFile(join(l.dir, 'exit'), 'utf8').catch(() => '')).trim()
    if (/^\d+$/.test(exit)) {
      const exited = exitedWith(Number(exit))
      const oom = exited.signal === 'SIGKILL' && (await this.cgroups.oomKills(l.allocId, l.task)) > 0
      return oom ? oomKilled(exited, l.resources.memoryMb) : exited
    }
    if (isAlive(h.pid, h.startTime)) return { state: 'running' }
    // the task's process is gone; while its supervisor lives it is about to write the exit file
    if (isAlive(h.supervisor.pid, h.supervisor.startTime)) return { state: 'running' }
    return { state: 'gone' }
  }

  wait(l: TaskLaunch, h: TaskHandle, timeoutMs: number): Promise<boolean> {
    return untilEnded(() => this.inspect(l, h), timeoutMs)
  }

  async stop(l: TaskLaunch, h: TaskHandle, graceMs: number): Promise<void> {
    if (signalOwn(h.pid, h.startTime, 'SIGTERM') && (await this.wait(l, h, graceMs))) return this.reap(l, h)
    signalOwn(h.pid, h.startTime, 'SIGKILL')
    await this.wait(l, h, 5000)
    await this.reap(l, h)
  }

  /** what the task forked and left (it kept the log pipe open, say): killed through its cgroup */
  private async reap(l: TaskLaunch, h: TaskHandle): Promise<void> {
    for (const p of await this.cgroups.pids(l.allocId, l.task)) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // gone
      }
    }
    await endSupervisor(h)
  }

  async exec(l: TaskLaunch, h: TaskHandle, command: string[], limits: ExecLimits): Promise<ExecResult> {
    // the task's own process, not its supervisor: only it holds the namespaces and the root to enter
    if (!isAlive(h.pid, h.startTime))
      throw new PlexusError('PLX_RUNNER_TASK_NOT_RUNNING', `task ${l.task} of ${l.allocId} is not running`, {
        status: 409,
      })
    const [name = '', ...args] = command
    const path = resolveCommand(name, l.env.PATH ?? DEFAULT_PATH, l.rootfs)
    const ids = l.user ? resolveUser(l.user, l.rootfs) : undefined
    return runEntered(
      enterArgv(l, h.pid, [path, ...args], ids),
      this.cgroups.procsFiles(l.allocId, l.task),
      limits,
    )
  }

  async destroy(l: TaskLaunch): Promise<void> {
    await this.cgroups.destroy(l.allocId, l.task)
  }
}
