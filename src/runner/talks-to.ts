// The PLEXUS_TALKSTO_* variables of a task: for each service its group
// declares in `talksTo`, the name that keeps resolving to whoever serves it
// (DNS) and the addresses serving it when the task started, nearest first.
// The addresses are a snapshot, as Docker's link variables are: a program
// that outlives its peers should resolve the name. Pure.

import type { JobSpec, TalksTo } from '../scheduler/spec.js'
import type { Catalog } from '../services/catalog.js'
import { nearestFirst } from '../services/near.js'
import type { AllocStateValue } from '../store/records.js'

export interface TalksToInput {
  talksTo: TalksTo[]
  /** the task's job: a talksTo entry may name one of its groups (by service or group name) */
  job: JobSpec
  catalog: Catalog
  /** allocstate records of the cluster: where the job's groups without a service run */
  allocs: AllocStateValue[]
  /** this host's peer id: the origin of "nearest" */
  self: string
  /** the DNS zone, e.g. plexus.internal */
  origin: string
}

/** `web-api` → `WEB_API`: a service name is a DNS label, so only `-` needs replacing */
export function talksToVar(service: string): string {
  return `PLEXUS_TALKSTO_${service.toUpperCase().replaceAll('-', '_')}`
}

export function talksToEnv(input: TalksToInput): Record<string, string> {
  const env: Record<string, string> = {}
  for (const t of input.talksTo) {
    const group = input.job.groups.find((g) => g.service?.name === t.service || g.name === t.service)
    const service = group ? group.service?.name : t.service
    const name = talksToVar(t.service)
    if (service) {
      env[name] = `${service}.svc.${input.origin}`
      const members = (input.catalog.services.get(service)?.members ?? []).filter((m) => m.healthy)
      const port = (m: (typeof members)[number]) => m.ports[0]?.port
      env[`${name}_ADDRS`] = nearestFirst(members, input.catalog.nodes, input.self)
        .map((m) => (port(m) ? `${m.ipv4}:${port(m)}` : m.ipv4))
        .join(',')
    } else if (group) {
      // a group of this job without a service has no DNS name: where its allocations run now
      const running = input.allocs
        .filter(
          (a) => a.job === input.job.name && a.group === group.name && a.status === 'running' && a.address,
        )
        .map((a) => ({ peer: a.host, address: a.address as string }))
      env[`${name}_ADDRS`] = nearestFirst(running, input.catalog.nodes, input.self)
        .map((a) => a.address)
        .join(',')
    }
  }
  return env
}
