// Removes every task a runner left on this host, without an agent: for a
// host being torn down (the test bed's `down`) where no CNI DEL can run
// because no agent answers. Processes are killed only when they are provably
// the task's ((pid, start time), or membership of the task's cgroup).

import { signalOwn } from '../lib/proc.js'
import { Cgroups } from './exec/cgroups.js'
import { deleteNetns } from './network.js'
import { loadAllocs, removeAlloc } from './state.js'
import { killSupervisor } from './supervisor.js'

/** Kills every recorded task, removes its cgroups and namespace and the records; returns the allocation ids. */
export async function cleanupRunner(
  stateDir: string,
  cgroups: Cgroups = Cgroups.detect(),
): Promise<string[]> {
  const { allocs } = await loadAllocs(stateDir)
  for (const a of allocs) {
    for (const t of a.tasks) {
      if (t.handle) {
        signalOwn(t.handle.pid, t.handle.startTime, 'SIGKILL')
        killSupervisor(t.handle)
      }
      await cgroups.destroy(a.id, t.name)
    }
    await deleteNetns(a.netns)
    await removeAlloc(stateDir, a.id)
  }
  return allocs.map((a) => a.id)
}
