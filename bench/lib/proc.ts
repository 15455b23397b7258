// What the kernel says a process costs: resident memory and CPU time.
import { readFileSync } from 'node:fs'
import { statFields } from '../../src/lib/proc.js'

/** resident set of pid, MB (0 when /proc does not say) */
export const rssMb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

/** clock ticks a second: Linux reports 100 on every architecture Node runs on (USER_HZ) */
const TICKS = 100

/**
 * CPU seconds of pids so far, user and system, with their reaped children's (an agent's iptables
 * and ip runs count as its own); a pid that is gone counts 0.
 */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    // utime, stime, cutime, cstime: proc(5) fields 14-17
    const f = statFields(pid) ?? []
    for (const i of [11, 12, 13, 14]) ticks += Number(f[i] ?? 0)
  }
  return ticks / TICKS
}
