// The contract between the runner and the ways it can run a task (Nomad's
// drivers: StartTask, WaitTask, StopTask, RecoverTask). One folder per
// driver; the runner picks one by the task's `driver` field. A driver knows
// processes, not allocations: the network namespace it joins, the state
// directory it writes and the limits it applies are handed to it.
import { PlexusError } from '../lib/errors.js'
import { signalName } from '../lib/proc.js'

export interface TaskLaunch {
  /** the allocation (a group instance): names the task's cgroup */
  allocId: string
  task: string
  /** argv; the first element a name looked up in PATH or a path (podman with an image: may be empty, the image's own) */
  command: string[]
  /** the task's whole environment (nothing of the agent's leaks in) */
  env: Record<string, string>
  /** `name`, `uid` or `uid:gid`; absent: root */
  user?: string
  /** directory the task sees as / (absent: the host's, or the image's) */
  rootfs?: string
  /** podman: an image in local storage the task runs from (instead of rootfs) */
  image?: string
  /** cpu in millicores, memory in MiB, the most processes at once */
  resources: { cpu: number; memoryMb: number; pids: number }
  /** path of the network namespace the task joins (the runner made and attached it) */
  netns: string
  /** a resolv.conf (from the CNI result: the host's Plexus DNS) the task sees as /etc/resolv.conf */
  resolvConf?: string
  /** a hosts file (the group's links, kept current by the ports module) the task sees as /etc/hosts */
  hosts?: string
  /** this task's own directory: pid and exit files, logs/ */
  dir: string
  /** a task with its own root (rootfs, image) and templates: its rendered templates' directory, seen at /local */
  local?: string
  /** log rotation: each file at most maxBytes, at most files of them (current included) */
  logs: { maxBytes: number; files: number }
}

/** What names one started process for as long as it lives: a pid alone may be reused. */
export interface TaskHandle {
  pid: number
  /** /proc/<pid>/stat field 22 (clock ticks after boot) */
  startTime: number
  /** the process that waits for the task and records its exit status */
  supervisor: { pid: number; startTime: number }
  /** ms epoch */
  startedAt: number
}

export type Observed =
  | { state: 'running' }
  /** it ended and its exit status was recorded; signal when killed by one */
  | { state: 'exited'; exitCode: number; signal?: string; reason?: string }
  /** it is gone and nothing recorded how it ended (its supervisor was killed, the host rebooted) */
  | { state: 'gone' }

/** An ended task's exit status (128+N: killed by signal N; 126, 127: the shell's "cannot run", "not found"). */
export function exitedWith(status: number): Extract<Observed, { state: 'exited' }> {
  if (status > 128) return { state: 'exited', exitCode: status, signal: signalName(status - 128) }
  if (status === 126)
    return { state: 'exited', exitCode: status, reason: 'exit code 126: the command could not be executed' }
  if (status === 127)
    return { state: 'exited', exitCode: status, reason: 'exit code 127: the command was not found' }
  return { state: 'exited', exitCode: status }
}

/** An end the memory limit caused, said so. */
export const oomKilled = (
  exited: Extract<Observed, { state: 'exited' }>,
  memoryMb: number,
): Extract<Observed, { state: 'exited' }> => ({
  ...exited,
  reason: `memory limit hit (${memoryMb} MiB): killed by the OOM killer`,
})

/** Polls inspect until the task is no longer running; false when timeoutMs passed first. */
export async function untilEnded(inspect: () => Promise<Observed>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await inspect()).state !== 'running') return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return false
}

/** What a command run in a task (`exec`) may take: the most time, the most output kept per stream. */
export interface ExecLimits {
  timeoutMs: number
  maxOutputBytes: number
}

/** A command run in a task: its exit status (128+N when signal N ended it) and its output. */
export interface ExecResult {
  exitCode: number
  signal?: string
  stdout: string
  stderr: string
  /** a stream wrote more than maxOutputBytes: only its first bytes are here */
  truncated: boolean
  /** the timeout passed and the command's process group was killed */
  timedOut: boolean
}

export interface Driver {
  readonly name: string
  /** Starts the task detached from the agent (its own session): it outlives an agent restart. */
  start(launch: TaskLaunch): Promise<TaskHandle>
  /** What became of a started task; after an agent restart this is how a task is adopted. */
  inspect(launch: TaskLaunch, handle: TaskHandle): Promise<Observed>
  /** SIGTERM, up to graceMs, then SIGKILL; every process the task left is killed. Never signals a process it cannot prove is the task's. */
  stop(launch: TaskLaunch, handle: TaskHandle, graceMs: number): Promise<void>
  /** Resolves once the task has ended (or timeoutMs passed: false). */
  wait(launch: TaskLaunch, handle: TaskHandle, timeoutMs: number): Promise<boolean>
  /** Runs a command in the running task's namespaces, root, user, environment and cgroups; PLX_RUNNER_TASK_NOT_RUNNING (409) when it is not running. */
  exec(launch: TaskLaunch, handle: TaskHandle, command: string[], limits: ExecLimits): Promise<ExecResult>
  /** Releases what start() made (cgroups, files); the task must have ended. Idempotent. */
  destroy(launch: TaskLaunch): Promise<void>
}

/** Drivers by name, picked once when the runner starts (flannel's backend manager). */
export class DriverRegistry {
  private readonly drivers = new Map<string, Driver>()

  register(d: Driver): void {
    this.drivers.set(d.name, d)
  }

  get(name: string): Driver {
    const d = this.drivers.get(name)
    if (!d)
      throw new PlexusError(
        'PLX_RUNNER_UNKNOWN_DRIVER',
        `unknown driver "${name}" (have: ${[...this.drivers.keys()].join(', ')})`,
      )
    return d
  }
}
