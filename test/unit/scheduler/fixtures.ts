// Hosts and jobs for the placement tests, and an RTT model that is not
// Vivaldi's: a zone table (the tests check placement, not coordinates).
import type { HostView, PlacementInput, Plan } from '../../../src/scheduler/placement/types.js'
import type { JobSpec } from '../../../src/scheduler/spec.js'

export { group, host, job } from '../../helpers/placement.js'

/** Same host 0, same zone 0.5 ms, else the zone table (default 20 ms). */
export function zoneRtt(table: Record<string, number> = {}) {
  return (a: HostView, b: HostView): number => {
    if (a.id === b.id) return 0
    const za = a.labels.zone ?? ''
    const zb = b.labels.zone ?? ''
    if (za === zb) return 0.5
    return table[`${za}-${zb}`] ?? table[`${zb}-${za}`] ?? 20
  }
}

export const input = (
  j: JobSpec,
  hosts: HostView[],
  extra: Partial<PlacementInput> = {},
): PlacementInput => ({
  job: j,
  hosts,
  options: { rttMs: zoneRtt(), ...extra.options },
  ...(extra.allocations ? { allocations: extra.allocations } : {}),
  ...(extra.traffic ? { traffic: extra.traffic } : {}),
})

/** host names of a group's placements, sorted */
export const hostsOf = (plan: Plan, g: string) =>
  plan.placements
    .filter((p) => p.group === g)
    .map((p) => p.hostName)
    .sort()

export const verdict = (plan: Plan, g: string, hostName: string) =>
  plan.groups.find((x) => x.group === g)?.hosts.find((h) => h.name === hostName)
