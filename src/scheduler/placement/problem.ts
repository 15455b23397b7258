// A job compiled against the hosts once: per group its demand, the hosts that
// pass the static filters (alive, constraints, anti-affinity to running
// services, published ports, named networks, capacity), the verdict for every other host, the
// static part of the affinity score, and the traffic edges between groups.
// Everything per host is an array indexed like `hosts`, so the placement loop
// touches no strings.
import { CLUSTER_NETWORK_NAME } from '../../ipam/bridge.js'
import type { Constraint, GroupSpec, JobSpec } from '../spec.js'
import { attributeOf, describeMatch, matcher } from './attributes.js'
import type { ExistingAllocation, HostView, MeasuredTraffic, PlacementOptions } from './types.js'

export type Scope = 'group' | 'job'

export interface DistinctProperty {
  scope: Scope
  attribute: string
  limit: number
  /** attribute value per host */
  valueAt: (string | undefined)[]
  /** which counter of the state holds this constraint's counts */
  counter: number
}

export interface SpreadTerm {
  weight: number
  valueAt: (string | undefined)[]
  /** percent per value; absent: even over `values` */
  targets?: Map<string, number>
  /** distinct values among the group's candidates */
  values: string[]
  counter: number
}

/** Traffic between two groups of the job, as weight per slot pair. */
export interface Edge {
  group: number
  pairWeight: number
  maxRttMs?: number
}

/** Traffic to a service outside the job: its instances' hosts. */
export interface ExternalEdge {
  service: string
  hosts: number[]
  pairWeight: number
  maxRttMs?: number
}

export interface GroupModel {
  index: number
  spec: GroupSpec
  name: string
  service?: string
  count: number
  cpu: number
  memoryMb: number
  ports: string[]
  /** indices of hosts that pass the static filters */
  candidates: number[]
  /** per host: the static filter that removed it, and why */
  filterOf: (string | undefined)[]
  reasonOf: (string | undefined)[]
  /** per host, label affinities and affinities to services outside the job, in [-1, 1]; undefined: none declared */
  affinity?: Float64Array
  /** affinities to services of this job's groups (known only while placing) */
  jobAffinities: { group: number; weight: number }[]
  affinityWeight: number
  distinctHosts?: Scope
  distinctProperties: DistinctProperty[]
  /** groups of this job whose service this group must never share a host with */
  antiGroups: number[]
  spreads: SpreadTerm[]
  /** spread attribute values joined: local search keeps a slot within its value (undefined: no spread) */
  spreadKey?: string[]
  edges: Edge[]
  external: ExternalEdge[]
}

export interface Problem {
  job: JobSpec
  hosts: HostView[]
  groups: GroupModel[]
  /** counters the state keeps (distinct_property and spread counts) */
  counters: number
}

const DEFAULT_AFFINITY_WEIGHT = 50

function servicesByHost(hosts: HostView[], allocations: ExistingAllocation[]): Map<string, Set<number>> {
  const index = new Map(hosts.map((h, i) => [h.id, i]))
  const out = new Map<string, Set<number>>()
  for (const a of allocations) {
    const h = index.get(a.host)
    if (h === undefined || !a.service) continue
    const set = out.get(a.service) ?? new Set<number>()
    set.add(h)
    out.set(a.service, set)
  }
  return out
}

/** what one slot of a group needs: the sum of its tasks (a group shares one namespace and one slot) */
export const groupDemand = (g: GroupSpec) => ({
  cpu: g.tasks.reduce((s, t) => s + t.resources.cpu, 0),
  memoryMb: g.tasks.reduce((s, t) => s + t.resources.memoryMb, 0),
})

/** Compiles the job against the hosts. Pure. */
export function compileProblem(
  job: JobSpec,
  hosts: HostView[],
  allocations: ExistingAllocation[],
  opts: PlacementOptions,
  traffic: readonly MeasuredTraffic[] = [],
): Problem {
  const running = servicesByHost(hosts, allocations)
  let counters = 0
  const byServiceOrName = new Map<string, number>()
  job.groups.forEach((g, i) => {
    byServiceOrName.set(g.name, i)
    if (g.service) byServiceOrName.set(g.service.name, i)
  })
  const isSystem = job.type === 'system'

  const groups: GroupModel[] = job.groups.map((spec, index) => {
    const { cpu, memoryMb } = groupDemand(spec)
    const ports = (spec.ports ?? []).map((p) => `${p.hostPort}/${p.protocol}`)
    // every host has the cluster network; a named one only where it leased a subnet or block of it
    const named = (spec.networks ?? []).filter((n) => n !== CLUSTER_NETWORK_NAME)
    const constraints: { c: Constraint; scope: Scope }[] = [
      ...(job.constraints ?? []).map((c) => ({ c, scope: 'job' as const })),
      ...(spec.constraints ?? []).map((c) => ({ c, scope: 'group' as const })),
    ]
    const matches = constraints
      .filter(({ c }) => c.operator !== 'distinct_hosts' && c.operator !== 'distinct_property')
      .map(({ c }) => ({ test: matcher(c), text: describeMatch(c) }))
    const anti = (spec.antiAffinities ?? []).map((a) => a.service)
    const antiOutside = anti.map((s) => ({ service: s, hosts: running.get(s) }))

    const filterOf: (string | undefined)[] = []
    const reasonOf: (string | undefined)[] = []
    const candidates: number[] = []
    hosts.forEach((h, i) => {
      let filter: string | undefined
      let reason: string | undefined
      if (!h.alive) [filter, reason] = ['alive', 'host is not alive']
      if (!filter) {
        const failed = matches.find((m) => !m.test(h))
        if (failed) [filter, reason] = ['constraint', `${failed.text} does not hold`]
      }
      if (!filter) {
        const hit = antiOutside.find((a) => a.hosts?.has(i))
        if (hit) [filter, reason] = ['anti-affinity', `runs service ${hit.service}`]
      }
      if (!filter && ports.length && h.usedPorts?.length) {
        const taken = ports.filter((p) => h.usedPorts?.includes(p))
        if (taken.length) [filter, reason] = ['ports', `host port ${taken.join(', ')} in use`]
      }
      if (!filter && named.length && h.networks) {
        const missing = named.filter((n) => !h.networks?.includes(n))
        if (missing.length)
          [filter, reason] = ['network', `holds no subnet or block of network ${missing.join(', ')}`]
      }
      // a system job runs on every eligible host: a full one is a failure to report, not an ineligible host
      if (!filter && !isSystem) {
        const freeCpu = h.capacity.cpu - h.used.cpu
        const freeMem = h.capacity.memoryMb - h.used.memoryMb
        if (freeCpu < cpu) [filter, reason] = ['capacity', `cpu: needs ${cpu}m, ${freeCpu}m free`]
        else if (freeMem < memoryMb)
          [filter, reason] = ['capacity', `memory: needs ${memoryMb} MiB, ${freeMem} MiB free`]
      }
      filterOf.push(filter)
      reasonOf.push(reason)
      if (!filter) candidates.push(i)
    })

    const affinities = [...(job.affinities ?? []), ...(spec.affinities ?? [])]
    let affinity: Float64Array | undefined
    const jobAffinities: { group: number; weight: number }[] = []
    let affinityWeight = 0
    for (const a of affinities) {
      const w = a.weight ?? DEFAULT_AFFINITY_WEIGHT
      affinityWeight += Math.abs(w)
      const inJob = a.service !== undefined ? byServiceOrName.get(a.service) : undefined
      if (inJob !== undefined) {
        jobAffinities.push({ group: inJob, weight: w })
        continue
      }
      affinity ??= new Float64Array(hosts.length)
      const test =
        a.service !== undefined
          ? (_h: HostView, i: number) => running.get(a.service as string)?.has(i) ?? false
          : matcher(a)
      hosts.forEach((h, i) => {
        if (test(h, i)) (affinity as Float64Array)[i] = ((affinity as Float64Array)[i] as number) + w
      })
    }
    if (affinity)
      for (let i = 0; i < affinity.length; i++) affinity[i] = (affinity[i] as number) / affinityWeight

    const distinct = constraints.filter(({ c }) => c.operator === 'distinct_hosts')
    const distinctHosts: Scope | undefined = distinct.some((d) => d.scope === 'job')
      ? 'job'
      : distinct.length
        ? 'group'
        : undefined
    const distinctProperties = constraints
      .filter(({ c }) => c.operator === 'distinct_property')
      .map(({ c, scope }) => ({
        scope,
        attribute: c.attribute as string,
        limit: c.limit ?? 1,
        valueAt: hosts.map((h) => attributeOf(h, c.attribute as string)),
        counter: counters++,
      }))

    const spreads = (spec.spread ?? []).map((s) => {
      const valueAt = hosts.map((h) => attributeOf(h, s.attribute))
      const values = [
        ...new Set(candidates.map((i) => valueAt[i]).filter((v): v is string => v !== undefined)),
      ].sort()
      return {
        weight: s.weight ?? 50,
        valueAt,
        targets: s.targets ? new Map(s.targets.map((t) => [t.value, t.percent])) : undefined,
        values,
        counter: counters++,
      }
    })
    const spreadKey = spreads.length
      ? hosts.map((_, i) => spreads.map((s) => s.valueAt[i] ?? '').join('\u0000'))
      : undefined

    return {
      index,
      spec,
      name: spec.name,
      service: spec.service?.name,
      count: isSystem ? candidates.length : spec.count,
      cpu,
      memoryMb,
      ports,
      candidates,
      filterOf,
      reasonOf,
      affinity,
      jobAffinities,
      affinityWeight,
      distinctHosts,
      distinctProperties,
      antiGroups: anti.map((s) => byServiceOrName.get(s)).filter((g): g is number => g !== undefined),
      spreads,
      spreadKey,
      edges: [],
      external: [],
    }
  })

  if (opts.network !== false) addEdges(job, groups, byServiceOrName, running, traffic)
  return { job, hosts, groups, counters }
}

/** a talksTo's weight when it gives none; the busiest measured pair of a job weighs the same */
const DEFAULT_TALKS_WEIGHT = 1
/** measured pairs lighter than this share of the job's busiest are noise (health checks, DNS) */
const MEASURED_FLOOR = 0.01

/**
 * The measured pairs between a group's service and another service that no talksTo of either side
 * declares (declared weights win), weighted relative to the busiest such pair of the job: group
 * index, the other service, weight. Both directions of a pair count as one exchange.
 */
export function measuredTalks(
  job: JobSpec,
  byServiceOrName: ReadonlyMap<string, number>,
  traffic: readonly MeasuredTraffic[],
): { group: number; service: string; weight: number }[] {
  const declared = new Set<string>()
  job.groups.forEach((spec, a) => {
    for (const t of spec.talksTo ?? []) {
      declared.add(`${a} ${t.service}`)
      const b = byServiceOrName.get(t.service)
      const own = spec.service?.name
      const theirs = b === undefined ? undefined : job.groups[b]?.service?.name
      if (theirs) declared.add(`${a} ${theirs}`)
      if (b !== undefined && own) declared.add(`${b} ${own}`)
    }
  })
  const rate = new Map<string, number>()
  for (const t of traffic) {
    if (t.from === t.to || !(t.bytesPerSec > 0)) continue
    const k = t.from < t.to ? `${t.from} ${t.to}` : `${t.to} ${t.from}`
    rate.set(k, (rate.get(k) ?? 0) + t.bytesPerSec)
  }
  const found: { group: number; service: string; rate: number }[] = []
  job.groups.forEach((spec, a) => {
    const own = spec.service?.name
    if (!own) return
    for (const [k, r] of rate) {
      const [x, y] = k.split(' ') as [string, string]
      const other = x === own ? y : y === own ? x : undefined
      if (other === undefined || declared.has(`${a} ${other}`)) continue
      const b = byServiceOrName.get(other)
      // a pair of two groups of the job is one edge: taken from the lower group's side
      if (b !== undefined && (b === a || b < a)) continue
      found.push({ group: a, service: other, rate: r })
    }
  })
  const max = Math.max(0, ...found.map((f) => f.rate))
  return found
    .filter((f) => f.rate >= MEASURED_FLOOR * max)
    .map((f) => ({ group: f.group, service: f.service, weight: (DEFAULT_TALKS_WEIGHT * f.rate) / max }))
}

/**
 * Traffic edges. A talksTo of weight w between groups of A and B slots is
 * spread evenly over the A×B slot pairs (clients balance over instances), and
 * an edge declared both ways counts both weights; the tighter maxRttMs holds.
 * Measured traffic between services adds the pairs no talksTo declares.
 */
function addEdges(
  job: JobSpec,
  groups: GroupModel[],
  byServiceOrName: Map<string, number>,
  running: Map<string, Set<number>>,
  traffic: readonly MeasuredTraffic[],
): void {
  const pair = new Map<string, { w: number; max?: number }>()
  const talk = (a: number, service: string, w: number, maxRttMs?: number) => {
    const b = byServiceOrName.get(service)
    const ga = groups[a] as GroupModel
    if (b === undefined) {
      const hosts = [...(running.get(service) ?? [])].sort((x, y) => x - y)
      if (hosts.length && ga.count)
        ga.external.push({ service, hosts, pairWeight: w / (ga.count * hosts.length), maxRttMs })
      return
    }
    if (b === a) return
    const key = a < b ? `${a}:${b}` : `${b}:${a}`
    const e = pair.get(key) ?? { w: 0 }
    e.w += w
    if (maxRttMs !== undefined) e.max = Math.min(e.max ?? Number.POSITIVE_INFINITY, maxRttMs)
    pair.set(key, e)
  }
  job.groups.forEach((spec, a) => {
    for (const t of spec.talksTo ?? []) talk(a, t.service, t.weight ?? DEFAULT_TALKS_WEIGHT, t.maxRttMs)
  })
  for (const m of measuredTalks(job, byServiceOrName, traffic)) talk(m.group, m.service, m.weight)
  for (const [key, e] of [...pair].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const [a, b] = key.split(':').map(Number) as [number, number]
    const ga = groups[a] as GroupModel
    const gb = groups[b] as GroupModel
    if (!ga.count || !gb.count) continue
    const pairWeight = e.w / (ga.count * gb.count)
    ga.edges.push({ group: b, pairWeight, maxRttMs: e.max })
    gb.edges.push({ group: a, pairWeight, maxRttMs: e.max })
  }
}
