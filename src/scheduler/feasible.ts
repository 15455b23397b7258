// Pure: what keeps a job from ever being placed on the cluster as it is, whatever else runs on it:
// a group whose constraints no host meets, a slot bigger than any host, more distinct hosts than
// there are, a job bigger than the cluster. Checked at submission (PLX_JOB_UNPLACEABLE, nothing
// written). A job that fits only once other jobs stop is accepted and waits, as Nomad's blocked
// evaluations do, and so is a system job (its hosts may join later).
import { place } from './placement/solver.js'
import type { HostView } from './placement/types.js'
import type { JobSpec } from './spec.js'

/** every reason, one a group: empty when the job can be placed on the hosts as if nothing ran */
export function unplaceable(job: JobSpec, hosts: HostView[]): string[] {
  if (job.type === 'system') return []
  if (!hosts.length) return []
  // every member counts, dead, drained or just joined; one that has not said what it offers yet
  // (its capacity record not here) is taken to have room for anything
  const unknown = { cpu: Number.MAX_SAFE_INTEGER, memoryMb: Number.MAX_SAFE_INTEGER }
  // and so is a named network's lease (a network just created is leased by every host soon after)
  const empty = hosts.map(({ networks: _leased, ...h }) => ({
    ...h,
    alive: true,
    capacity: h.capacity.cpu > 0 || h.capacity.memoryMb > 0 ? h.capacity : unknown,
    used: { cpu: 0, memoryMb: 0 },
    usedPorts: [],
  }))
  const plan = place({ job, hosts: empty, options: { network: false, exact: false } })
  const byGroup = new Map<string, { slots: number; reason: string }>()
  for (const f of plan.failures) {
    const g = byGroup.get(f.group) ?? { slots: 0, reason: f.reason }
    g.slots++
    byGroup.set(f.group, g)
  }
  return job.groups.flatMap((g) => {
    const f = byGroup.get(g.name)
    return f
      ? [
          `group ${g.name}: ${f.slots} of ${g.count} slots fit no host, even with nothing else running: ${f.reason}`,
        ]
      : []
  })
}
