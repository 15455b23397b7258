// Processes by pid and start time. A pid is reused once its process is gone,
// so a supervisor (the runner's tasks, the WireGuard device) never signals a
// pid alone: (pid, start time) names one process for as long as it lives, and
// a zombie (this machine's PID 1 does not reap orphans) counts as gone.
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'

interface ProcStat {
  state: string
  startTime: number
}

/**
 * The fields of /proc/<pid>/stat after the command (state first, so field N of proc(5) is at
 * N - 3), or undefined when there is no such process.
 */
export function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // "pid (comm) S ...": comm may hold spaces and parentheses, so split after the last ')'
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

function stat(pid: number): ProcStat | undefined {
  const fields = statFields(pid)
  return fields && { state: fields[0] ?? '', startTime: Number(fields[19]) }
}

/** /proc/<pid>/stat field 22, or undefined when there is no such process. */
export function procStartTime(pid: number): number | undefined {
  return stat(pid)?.startTime
}

/** The process (pid, startTime) still exists and has not exited (a zombie has). */
export function isAlive(pid: number, startTime: number): boolean {
  const s = stat(pid)
  return s !== undefined && s.startTime === startTime && s.state !== 'Z'
}

/** Sends a signal to (pid, startTime) only: false when that process is gone. */
export function signalOwn(pid: number, startTime: number, signal: NodeJS.Signals): boolean {
  if (!isAlive(pid, startTime)) return false
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]))

/** a signal's name from its number (SIGKILL for 9), or "signal N" for one this platform does not name */
export function signalName(n: number): string {
  return signalNames.get(n) ?? `signal ${n}`
}
