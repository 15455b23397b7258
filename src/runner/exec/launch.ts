// What the exec driver runs, decided before anything is started: the command
// resolved to a file that exists, the user to numeric ids, and the argv of
// the chain that puts the task in its namespaces. Problems here are the
// task's own (a missing binary, an unknown user, a bad rootfs) and come back
// as typed errors the runner reports as the allocation's failure reason.
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { PlexusError } from '../../lib/errors.js'
import type { TaskLaunch } from '../driver.js'

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

const isExecutableFile = (path: string): boolean => {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The command's path as the task sees it (inside rootfs when one is given). */
export function resolveCommand(name: string, pathVar: string, rootfs = '/'): string {
  const candidates = name.includes('/')
    ? [name]
    : pathVar
        .split(':')
        .filter(Boolean)
        .map((d) => join(d, name))
  for (const c of candidates) if (c.startsWith('/') && isExecutableFile(join(rootfs, c))) return c
  throw new PlexusError(
    'PLX_RUNNER_NO_COMMAND',
    name.includes('/')
      ? `command "${name}" is not an executable file${rootfs === '/' ? '' : ` in rootfs ${rootfs}`}`
      : `command "${name}" not found in PATH (${pathVar})${rootfs === '/' ? '' : ` in rootfs ${rootfs}`}`,
  )
}

export interface Ids {
  uid: number
  gid: number
}

/** `uid`, `uid:gid` or a name from the passwd text (pure). */
export function parseUser(user: string, passwd: string): Ids {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user)
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]) }
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':')
    if (name === user && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) }
  }
  throw new PlexusError('PLX_RUNNER_BAD_USER', `user "${user}" is not in /etc/passwd`)
}

export function resolveUser(user: string, rootfs = '/'): Ids {
  let passwd = ''
  try {
    passwd = readFileSync(join(rootfs, 'etc/passwd'), 'utf8')
  } catch {
    // no passwd file: only numeric users resolve
  }
  return parseUser(user, passwd)
}

export function checkRootfs(rootfs: string): void {
  let ok = false
  try {
    ok = statSync(rootfs).isDirectory()
  } catch {
    ok = false
  }
  if (!ok) throw new PlexusError('PLX_RUNNER_BAD_ROOTFS', `rootfs ${rootfs} is not a directory`)
}

/**
 * Bind-mounts $0 over $1 when $1 exists (a rootfs without /etc/resolv.conf
 * keeps its own resolving), then execs the rest: run inside the task's own
 * mount namespace, so the host's file is never touched. Bind mounts follow the
 * file's inode, so a hosts file rewritten in place (links) stays current.
 */
const BIND_THEN_EXEC = 'if [ -e "$1" ]; then mount --bind "$0" "$1" || exit 126; fi; shift; exec "$@"'

/**
 * The chain the task is exec'd through (pure), each step replacing the last so
 * the task keeps the pid the supervisor recorded:
 *   env -i            the task's environment only, nothing of the agent's
 *   unshare --mount   its own mount namespace (private propagation: its mounts never reach the host)
 *   sh: mount --bind  the allocation's resolv.conf over /etc/resolv.conf (the host's Plexus DNS), its
 *                     hosts file (links) over /etc/hosts, and its rendered templates over the rootfs'
 *                     /local (the rootfs provides the directory), each when given
 *   nsenter --net     the network namespace the runner attached, then chroot and the user's ids
 */
export function taskArgv(l: TaskLaunch, command: string, ids: Ids | undefined): string[] {
  const binds: [string | undefined, string][] = [
    [l.resolvConf, '/etc/resolv.conf'],
    [l.hosts, '/etc/hosts'],
    [l.local, '/local'],
  ]
  const mounts = binds.flatMap(([file, target]) =>
    file ? ['/bin/sh', '-c', BIND_THEN_EXEC, file, `${l.rootfs ?? ''}${target}`] : [],
  )
  return [
    ...onlyEnv(l.env),
    '/usr/bin/unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    ...mounts,
    '/usr/bin/nsenter',
    `--net=${l.netns}`,
    ...(l.rootfs ? [`--root=${l.rootfs}`, '--wd=/'] : []),
    ...idArgs(ids),
    '--',
    command,
    ...l.command.slice(1),
  ]
}

/** `env -i` and the task's variables: the argv after it sees the task's environment and nothing of the agent's */
export const onlyEnv = (env: Record<string, string>): string[] => [
  '/usr/bin/env',
  '-i',
  ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
]

/** nsenter's switch to the task's user (group first: after setuid it could no longer be set) */
export const idArgs = (ids: Ids | undefined): string[] =>
  ids ? [`--setgid=${ids.gid}`, `--setuid=${ids.uid}`] : []

/**
 * POSIX sh: the shell joins each cgroup whose `cgroup.procs` file is named in
 * $PLEXUS_CGROUP_PROCS (exit 125 when it cannot), so what it execs next is
 * limited and swept with the task. No single quotes: it is embedded in one.
 */
export const JOIN_CGROUPS = 'for f in $PLEXUS_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done'

/**
 * The supervisor (POSIX sh, detached in its own session): joins the task's
 * cgroups, records the task's pid, execs the task with its output through
 * multilog (size-bounded rotation), waits for it and records its exit status
 * ($? is 128+N when signal N killed it). It outlives the agent, so a new agent
 * reads the pid and the exit file instead of waiting on a child.
 * $1: the task's directory, $2: the log size, $3: the log file count, then the argv.
 */
export const SUPERVISOR = `dir=$1; size=$2; files=$3; shift 3
{
  sh -c '${JOIN_CGROUPS}
echo $$ > "$0/pid.tmp" && mv "$0/pid.tmp" "$0/pid" && exec "$@"' "$dir" "$@" 2>&1 </dev/null
  echo $? > "$dir/exit.tmp"; mv "$dir/exit.tmp" "$dir/exit"
} | multilog s"$size" n"$files" "$dir/logs"`
