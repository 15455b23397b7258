// What the podman driver runs, as pure functions: the container's name, the
// global arguments that pick podman's storage, the `podman run` argv that puts
// the task in the allocation's network namespace with its limits, environment
// and resolv.conf, the supervisor that carries its output into multilog, and
// what `podman inspect` says about it.
import { exitedWith, type Observed, oomKilled, type TaskLaunch } from '../driver.js'

/** where podman keeps its containers and images (absent: podman's own defaults) */
export interface PodmanConfig {
  /** the podman executable, a path or a name looked up in PATH (default `podman`) */
  binary?: string
  /** `--root`: image and container storage */
  root?: string
  /** `--runroot`: podman's runtime state */
  runroot?: string
}

/** One container per task of an allocation: a restart replaces it, a restarted agent finds it by this name. */
export const containerName = (allocId: string, task: string): string => `plx-${allocId}-${task}`

export const globalArgs = (c: PodmanConfig): string[] => [
  ...(c.root ? ['--root', c.root] : []),
  ...(c.runroot ? ['--runroot', c.runroot] : []),
]

/**
 * A soft:hard pair for `--ulimit` from /proc/self/limits text (pure); undefined
 * when the row is missing. "unlimited" is podman's -1.
 */
export function ownLimit(limits: string, row: string): string | undefined {
  const line = limits.split('\n').find((l) => l.startsWith(row))
  const [soft, hard] = line?.slice(row.length).trim().split(/\s+/) ?? []
  if (!soft || !hard) return undefined
  const v = (x: string) => (x === 'unlimited' ? '-1' : x)
  return `${v(soft)}:${v(hard)}`
}

/**
 * `podman run -d` for one task (pure). Each choice and why:
 * - `--replace`: a container of this name left by an earlier run (an agent killed between `run` and
 *   recording it) is replaced, never doubled;
 * - `--pull never`: offline and deterministic; the image must be in local storage (checked before);
 * - `--network ns:`: the allocation's namespace, made and attached by the runner (CNI ADD) as for
 *   exec, shared by the group's tasks like a pod's;
 * - `--log-driver passthrough`: conmon hands the container podman's own stdout/stderr, which the
 *   supervisor pipes into multilog: the same rotated files as an exec task;
 * - `--memory-swap` = `--memory`: no swap beyond the limit (the exec driver's memsw);
 * - `--ulimit`: podman's defaults (nofile 1048576) exceed what some hosts allow; the task gets the
 *   agent's open-file limit, as an exec task inherits it, and its pids limit as nproc;
 * - `--rootfs DIR:O`: an overlay over the directory, so podman's files (/etc/hosts, /dev, …) and the
 *   task's writes never reach it (other allocations run from the same directory).
 */
export function runArgv(l: TaskLaunch, nofile: string | undefined): string[] {
  const { cpu, memoryMb, pids } = l.resources
  return [
    'run',
    '-d',
    '--replace',
    '--name',
    containerName(l.allocId, l.task),
    '--label',
    `plexus.alloc=${l.allocId}`,
    '--label',
    `plexus.task=${l.task}`,
    '--pull',
    'never',
    '--network',
    `ns:${l.netns}`,
    '--log-driver',
    'passthrough',
    '--memory',
    `${memoryMb}m`,
    '--memory-swap',
    `${memoryMb}m`,
    '--cpus',
    String(cpu / 1000),
    '--pids-limit',
    String(pids),
    ...(nofile ? ['--ulimit', `nofile=${nofile}`] : []),
    '--ulimit',
    `nproc=${pids}:${pids}`,
    ...(l.user ? ['--user', l.user] : []),
    ...Object.entries(l.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    ...(l.resolvConf ? ['--volume', `${l.resolvConf}:/etc/resolv.conf:ro`] : []),
    ...(l.hosts ? ['--volume', `${l.hosts}:/etc/hosts:ro`] : []),
    ...(l.local ? ['--volume', `${l.local}:/local:ro`] : []),
    ...(l.rootfs ? ['--rootfs', `${l.rootfs}:O`] : [l.image ?? '']),
    ...l.command,
  ]
}

/**
 * The supervisor (POSIX sh, detached in its own session): runs `podman run -d`
 * with its output, and through passthrough the container's, into multilog, and
 * records podman's exit status in `run`. podman returns at once; multilog lives
 * until the container (conmon) closes the pipe, so the output is bounded and
 * rotated while no agent runs. $1: the task's directory, $2: the log size,
 * $3: the log file count, then the argv.
 */
export const SUPERVISOR = `dir=$1; size=$2; files=$3; shift 3
{
  "$@" 2>&1 </dev/null
  echo $? > "$dir/run.tmp"; mv "$dir/run.tmp" "$dir/run"
} | multilog s"$size" n"$files" "$dir/logs"`

/** What `podman inspect --format json` says of one container (the fields used). */
export interface InspectedState {
  Status?: string
  Pid?: number
  ExitCode?: number
  OOMKilled?: boolean
}

/**
 * A container's state as the runner sees a task (pure): running while podman
 * says so; an exit code (128+N: signal N); a container that never ran (created,
 * then its start failed) or is being removed counts as gone.
 */
export function observedOf(s: InspectedState, memoryMb: number): Observed {
  if (s.Status === 'running' || s.Status === 'paused' || s.Status === 'stopping') return { state: 'running' }
  if (s.Status !== 'exited' && s.Status !== 'stopped') return { state: 'gone' }
  const exited = exitedWith(s.ExitCode ?? 0)
  // podman sets OOMKilled where the kernel tells it (cgroup v2 events); on v1 a SIGKILL says no more
  return s.OOMKilled ? oomKilled(exited, memoryMb) : exited
}

/** podman's own complaint in its output (`Error: …`), the last one; what a failed start reports. */
export function podmanError(output: string): string | undefined {
  return output
    .split('\n')
    .filter((l) => l.startsWith('Error: '))
    .at(-1)
    ?.slice('Error: '.length)
}
