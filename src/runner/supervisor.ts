// A task's supervisor: a /bin/sh spawned detached (its own session and process
// group, no stdio shared with the agent) that carries the task's output into
// multilog and outlives the agent. Both drivers start one per task run; it is
// named by (pid, start time) in the task's handle, like the task itself.
import { spawn } from 'node:child_process'
import { PlexusError } from '../lib/errors.js'
import { isAlive, procStartTime, sleep } from '../lib/proc.js'
import type { TaskHandle } from './driver.js'

/** Spawns `sh -c script plexus-task ...args` detached; its (pid, start time). */
export function spawnSupervisor(
  script: string,
  args: string[],
  env: Record<string, string>,
): TaskHandle['supervisor'] {
  const child = spawn('/bin/sh', ['-c', script, 'plexus-task', ...args], {
    detached: true,
    stdio: 'ignore',
    env,
  })
  const pid = child.pid
  child.unref()
  if (pid === undefined) throw new PlexusError('PLX_RUNNER_START_FAILED', 'could not spawn /bin/sh')
  return { pid, startTime: procStartTime(pid) ?? 0 }
}

/**
 * The supervisor leads its own process group (spawned detached: setsid), and
 * multilog is in it: killing the group, once the supervisor is proven ours,
 * leaves no log writer behind.
 */
export function killSupervisor(h: TaskHandle): void {
  if (!isAlive(h.supervisor.pid, h.supervisor.startTime)) return
  try {
    process.kill(-h.supervisor.pid, 'SIGKILL')
  } catch {
    // gone meanwhile
  }
}

/** The task ended: its supervisor ends once the log pipe closes (up to 2 s), else its group is killed. */
export async function endSupervisor(h: TaskHandle): Promise<void> {
  const deadline = Date.now() + 2000
  while (isAlive(h.supervisor.pid, h.supervisor.startTime) && Date.now() < deadline) await sleep(20)
  killSupervisor(h)
}
