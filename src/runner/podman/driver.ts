// The podman driver: each task is one podman container (runc, conmon) in the
// network namespace the runner made and attached for its allocation (`--network
// ns:`), from an image in local storage or a root filesystem directory, with
// podman's cgroup limits. Its output reaches the same rotated files as an exec
// task's through a supervisor; podman keeps the container's state, so a
// restarted agent adopts it by name. See ../README.md.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { errorMessage, PlexusError } from '../../lib/errors.js'
import { isAlive, procStartTime, sleep } from '../../lib/proc.js'
import {
  type Driver,
  type ExecLimits,
  type ExecResult,
  type Observed,
  type TaskHandle,
  type TaskLaunch,
  untilEnded,
} from '../driver.js'
import { runEntered } from '../exec/enter.js'
import { checkRootfs, DEFAULT_PATH, resolveCommand, resolveUser } from '../exec/launch.js'
import { readLogs } from '../logs.js'
import { inHostMounts } from '../network.js'
import { endSupervisor, spawnSupervisor } from '../supervisor.js'
import {
  containerName,
  globalArgs,
  type InspectedState,
  observedOf,
  ownLimit,
  type PodmanConfig,
  podmanError,
  runArgv,
  SUPERVISOR,
} from './args.js'

const run = promisify(execFile)

/** how long start() waits for `podman run -d` (image layers, conmon, runc) on a loaded host */
const START_TIMEOUT_MS = 60_000

export class PodmanDriver implements Driver {
  readonly name = 'podman'
  private readonly global: string[]
  /** the agent's own open-file limit, which an exec task inherits */
  private readonly nofile = ownLimit(readFileSync('/proc/self/limits', 'utf8'), 'Max open files')

  constructor(private readonly config: PodmanConfig = {}) {
    this.global = globalArgs(config)
  }

  /** the podman executable, resolved now: a host without podman fails the task with that reason */
  private binary(): string {
    const name = this.config.binary ?? 'podman'
    try {
      return resolveCommand(name, process.env.PATH ?? DEFAULT_PATH)
    } catch {
      throw new PlexusError('PLX_RUNNER_NO_PODMAN', `podman is not installed here ("${name}" not found)`)
    }
  }

  /** podman's argv, in the host's mount namespace (network.ts inHostMounts: the cgroup mounts runc needs) */
  private argv(args: string[]): [string, ...string[]] {
    return inHostMounts([this.binary(), ...this.global, ...args]) as [string, ...string[]]
  }

  private podman(args: string[]): Promise<{ stdout: string; stderr: string }> {
    const [cmd, ...rest] = this.argv(args)
    return run(cmd, rest, { timeout: START_TIMEOUT_MS, maxBuffer: 1 << 20 })
  }

  async start(l: TaskLaunch): Promise<TaskHandle> {
    this.binary()
    // the task's own problems, each with its reason, before podman is asked
    if (l.rootfs) {
      checkRootfs(l.rootfs)
      if (l.command[0]) resolveCommand(l.command[0], l.env.PATH ?? DEFAULT_PATH, l.rootfs)
      if (l.user) resolveUser(l.user, l.rootfs)
    } else {
      const image = l.image ?? ''
      const known = await this.podman(['image', 'exists', image]).then(
        () => true,
        () => false,
      )
      if (!known)
        throw new PlexusError(
          'PLX_RUNNER_BAD_IMAGE',
          `image "${image}" is not in podman's local storage (the runner never pulls: podman pull or podman load it first)`,
        )
    }
    await mkdir(join(l.dir, 'logs'), { recursive: true })
    // a new run: the previous run's status must not be read as this one's
    await rm(join(l.dir, 'run'), { force: true })
    const supervisor = spawnSupervisor(
      SUPERVISOR,
      [l.dir, String(l.logs.maxBytes), String(l.logs.files), ...this.argv(runArgv(l, this.nofile))],
      { PATH: DEFAULT_PATH },
    )
    const deadline = Date.now() + START_TIMEOUT_MS
    let status = ''
    while (!status && Date.now() < deadline) {
      status = (await readFile(join(l.dir, 'run'), 'utf8').catch(() => '')).trim()
      if (!status) await sleep(20)
    }
    if (status !== '0') {
      // podman's message went through multilog with the rest of the output: wait for it briefly
      let said: string | undefined
      for (let i = 0; i < 25 && !said; i++) {
        said = podmanError(await readLogs(join(l.dir, 'logs'), 20))
        if (!said) await sleep(20)
      }
      throw new PlexusError(
        'PLX_RUNNER_START_FAILED',
        `podman run ${status ? `exited ${status}` : 'did not finish'}${said ? `: ${said}` : ''}`,
      )
    }
    const state = await this.state(l)
    const pid = state?.Pid ?? 0
    const startTime = pid > 0 ? procStartTime(pid) : undefined
    // a container that came and went already has no process: inspect reads its exit code
    return { pid, startTime: startTime ?? -1, supervisor, startedAt: Date.now() }
  }

  /** the container's state, undefined when there is no container of the task's name */
  private async state(l: TaskLaunch): Promise<InspectedState | undefined> {
    try {
      const { stdout } = await this.podman([
        'container',
        'inspect',
        '--format',
        'json',
        containerName(l.allocId, l.task),
      ])
      return (JSON.parse(stdout) as { State?: InspectedState }[])[0]?.State
    } catch (err) {
      if (/no such container/i.test((err as { stderr?: string }).stderr ?? '')) return undefined
      throw new PlexusError('PLX_RUNNER_PODMAN', `podman inspect: ${errorMessage(err)}`)
    }
  }

  async inspect(l: TaskLaunch, h: TaskHandle): Promise<Observed> {
    // the container's process alive is proof enough: podman is asked only once it is gone
    if (isAlive(h.pid, h.startTime)) return { state: 'running' }
    const s = await this.state(l)
    return s ? observedOf(s, l.resources.memoryMb) : { state: 'gone' }
  }

  wait(l: TaskLaunch, h: TaskHandle, timeoutMs: number): Promise<boolean> {
    return untilEnded(() => this.inspect(l, h), timeoutMs)
  }

  /** podman stop: the image's stop signal (SIGTERM), the grace in whole seconds, SIGKILL; the container is found by name. */
  async stop(l: TaskLaunch, h: TaskHandle, graceMs: number): Promise<void> {
    if ((await this.inspect(l, h)).state === 'running')
      await this.podman(['stop', '-t', String(Math.ceil(graceMs / 1000)), containerName(l.allocId, l.task)])
    await endSupervisor(h)
  }

  /** podman exec: the container's namespaces, cgroups, user and environment; killed (the client) at the timeout */
  async exec(l: TaskLaunch, h: TaskHandle, command: string[], limits: ExecLimits): Promise<ExecResult> {
    if (!isAlive(h.pid, h.startTime))
      throw new PlexusError('PLX_RUNNER_TASK_NOT_RUNNING', `task ${l.task} of ${l.allocId} is not running`, {
        status: 409,
      })
    return runEntered(this.argv(['exec', containerName(l.allocId, l.task), ...command]), [], limits)
  }

  /** podman rm: the container, its cgroup and its overlay go; where podman is not installed nothing was made. */
  async destroy(l: TaskLaunch): Promise<void> {
    await rm(join(l.dir, 'run'), { force: true })
    try {
      this.binary()
    } catch {
      return
    }
    await this.podman(['rm', '-f', '--ignore', '-t', '0', containerName(l.allocId, l.task)])
  }
}
