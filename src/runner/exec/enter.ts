// A command run inside a running task (`plexctl exec`, like `docker exec`):
// the task's network and mount namespaces, its root directory, working
// directory, user and environment, and its cgroups, so what it uses counts
// against the task's limits and whatever it leaves is swept with the task.
// Non-interactive: the output is captured, bounded, and handed back.
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import type { ExecLimits, ExecResult, TaskLaunch } from '../driver.js'
import { DEFAULT_PATH, type Ids, idArgs, JOIN_CGROUPS, onlyEnv } from './launch.js'

/**
 * The argv that enters the task whose process is `pid` (pure). nsenter takes
 * everything from that process rather than from paths: `--mount` is the
 * task's private mount namespace (its resolv.conf bind included), `--root`
 * and `--wd` without a value are the task's root (the rootfs it was chrooted
 * into) and working directory. `command` is resolved already (its first
 * element a path as the task sees it).
 */
export function enterArgv(l: TaskLaunch, pid: number, command: string[], ids: Ids | undefined): string[] {
  return [
    ...onlyEnv(l.env),
    '/usr/bin/nsenter',
    `--target=${pid}`,
    '--net',
    '--mount',
    '--root',
    '--wd',
    ...idArgs(ids),
    '--',
    ...command,
  ]
}

/** the first `max` bytes of a stream, and whether more came */
class Bounded {
  private readonly chunks: Buffer[] = []
  private size = 0
  truncated = false

  constructor(private readonly max: number) {}

  add(chunk: Buffer): void {
    const room = this.max - this.size
    if (chunk.length > room) this.truncated = true
    if (room <= 0) return
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
    this.chunks.push(kept)
    this.size += kept.length
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}

/**
 * Runs an enterArgv: a shell joins the task's cgroups (`cgroupProcs`, its
 * `cgroup.procs` files) and execs the argv, so every step after it is in them.
 * It leads its own process group (detached), so a timeout kills the command
 * and whatever it forked that stayed in the group. Output is read until both
 * pipes close: a child that keeps them open holds the result until the timeout.
 * Past maxOutputBytes a stream is still drained (the command must not block on
 * a full pipe) but no longer kept.
 */
export function runEntered(argv: string[], cgroupProcs: string[], limits: ExecLimits): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${JOIN_CGROUPS}; exec "$@"`, 'plexus-exec', ...argv], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: DEFAULT_PATH, PLEXUS_CGROUP_PROCS: cgroupProcs.join(' ') },
    })
    const out = new Bounded(limits.maxOutputBytes)
    const err = new Bounded(limits.maxOutputBytes)
    child.stdout.on('data', (c: Buffer) => out.add(c))
    child.stderr.on('data', (c: Buffer) => err.add(c))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        // the group is ours: its leader is the child we spawned (detached: setsid)
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // the group is gone already
      }
    }, limits.timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        exitCode: code ?? 128 + (signal ? constants.signals[signal] : 0),
        ...(signal ? { signal } : {}),
        stdout: out.text(),
        stderr: err.text(),
        truncated: out.truncated || err.truncated,
        timedOut,
      })
    })
  })
}
