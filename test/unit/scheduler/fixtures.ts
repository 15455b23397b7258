// Hosts and jobs for the placement tests, and an RTT model that is not
// Vivaldi's: a zone table (the tests check placement, not coordinates).
import type { HostView, PlacementInput, Plan } from '../../../src/scheduler/placement/types.js'
import type { GroupSpec, JobSpec } from '../../../src/scheduler/spec.js'

export interface HostOpts {
  zone?: string
  labels?: Record<string, string>
  cpu?: number
  memoryMb?: number
  usedCpu?: number
  alive?: boolean
  usedPorts?: string[]
}

export function host(name: string, o: HostOpts = {}): HostView {
  return {
    id: `peer-${name}`,
    name,
    address: `192.0.2.${name.replace(/\D/g, '') || '1'}`,
    alive: o.alive ?? true,
    labels: { ...(o.zone ? { zone: o.zone } : {}), ...o.labels },
    capacity: { cpu: o.cpu ?? 4000, memoryMb: o.memoryMb ?? 8192 },
    used: { cpu: o.usedCpu ?? 0, memoryMb: 0 },
    usedPorts: o.usedPorts,
  }
}

export function group(name: string, count: number, extra: Partial<GroupSpec> = {}, cpu = 100): GroupSpec {
  return {
    name,
    count,
    tasks: [{ name, driver: 'exec', config: { command: ['true'] }, resources: { cpu, memoryMb: 64 } }],
    service: { name },
    ...extra,
  }
}

export const job = (groups: GroupSpec[], extra: Partial<JobSpec> = {}): JobSpec => ({
  name: 'j',
  type: 'service',
  groups,
  ...extra,
})

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
})

/** host names of a group's placements, sorted */
export const hostsOf = (plan: Plan, g: string) =>
  plan.placements
    .filter((p) => p.group === g)
    .map((p) => p.hostName)
    .sort()

export const verdict = (plan: Plan, g: string, hostName: string) =>
  plan.groups.find((x) => x.group === g)?.hosts.find((h) => h.name === hostName)
