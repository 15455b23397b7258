import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'

/** Runs a command, returns stdout; throws with the command's stderr on failure. */
export function sh(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; status?: number }
    const detail = (e.stderr || e.stdout || '').trim()
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${e.status}): ${detail}`)
  }
}

/** Like sh() but never throws: for cleanup paths where "already gone" is success. */
export function shQuiet(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` }
}

export function ipNs(ns: string, ...args: string[]): string {
  return sh('ip', ['-n', ns, ...args])
}

export function listNetns(): string[] {
  const out = shQuiet('ip', ['netns', 'list']).out
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean)
}

export function netnsPids(ns: string): number[] {
  const r = shQuiet('ip', ['netns', 'pids', ns])
  if (!r.ok) return []
  return r.out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0)
}

/** Running, not merely a zombie waiting for a parent that is busy (a test blocked in spawnSync). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces, so read after the last ')'
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Start time of a process (clock ticks since boot, /proc/PID/stat field 22): with the pid, names one process. */
export function procStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after "pid (comm)": state is field 3, starttime field 22
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  } catch {
    return undefined
  }
}

/** SIGKILL for 9, and so on; the number itself when the name is unknown. */
export function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? String(n)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** SIGTERM, wait up to graceMs, then SIGKILL whatever is left. */
export async function killAll(pids: number[], graceMs = 3000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    for (const p of pids) {
      try {
        process.kill(p, sig)
      } catch {
        // already gone
      }
    }
  }
  signal('SIGTERM')
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && pids.some(alive)) await sleep(50)
  signal('SIGKILL')
  const hard = Date.now() + 2000
  while (Date.now() < hard && pids.some(alive)) await sleep(20)
}
