// What placement takes and gives. Placement is a pure function of these:
// no store, no clock, no randomness (ties are broken by a hash of the slot
// and the host, so the same input gives the same plan on every host).
import type { Coordinate } from '../../cluster/vivaldi.js'
import type { JobSpec } from '../spec.js'

/** One host as placement sees it (built from its nodes/ and capacity/ records). */
export interface HostView {
  /** peer id */
  id: string
  name: string
  address: string
  alive: boolean
  labels: Record<string, string>
  /** cpu in millicores, memory in MiB */
  capacity: { cpu: number; memoryMb: number }
  /** what the allocations it accepted use */
  used: { cpu: number; memoryMb: number }
  /** published host ports in use, as "80/tcp" */
  usedPorts?: string[]
  /**
   * the named networks it holds a subnet or block of (its netleases/ records); a group that joins
   * one it lacks cannot be attached there. Absent: not known, no host is filtered for it (the
   * submission check, which judges the cluster as if every lease were claimed)
   */
  networks?: string[]
  coordinate?: Coordinate
}

/** An allocation of another job already on a host (service affinities, anti-affinities, talksTo outside the job). */
export interface ExistingAllocation {
  host: string
  job: string
  group: string
  service?: string
}

export interface PlacementOptions {
  /** false: ignore talksTo (plain spread/binpack placement, the baseline the bench compares with); default true */
  network?: boolean
  /** per-host verdicts in the plan (off in the bench's throughput run); default true */
  explain?: boolean
  /** false: no bounded exact search after local search (to measure the heuristic alone); default true */
  exact?: boolean
  /** RTT assumed to or from a host without a coordinate (pessimistic, so known-near hosts win); default 100 */
  unknownRttMs?: number
  /** overrides the coordinate estimate (e.g. measured RTT); ms, symmetric, 0 for a == b */
  rttMs?: (a: HostView, b: HostView) => number
}

/** bytes a second between two services, measured (traffic/ records, summed over hosts) */
export interface MeasuredTraffic {
  from: string
  to: string
  bytesPerSec: number
}

export interface PlacementInput {
  job: JobSpec
  hosts: HostView[]
  allocations?: ExistingAllocation[]
  /** the cluster's measured service-to-service traffic: edges where no talksTo declares one */
  traffic?: readonly MeasuredTraffic[]
  /**
   * slots of this job that already run and stay where they are: placed first
   * (their partners score against them), never moved, not filtered again.
   * Their resources must not also be in their host's `used`. Ignored for
   * system jobs, whose slots are their hosts.
   */
  keep?: { group: string; index: number; host: string }[]
  options?: PlacementOptions
}

/** Each term in [0, 1] (affinity in [-1, 1]), higher is better; total is their weighted mean. */
export interface ScoreBreakdown {
  network?: number
  /** Σ weight × RTT to the partners placed so far, before normalisation */
  networkCostMs?: number
  balance: number
  affinity?: number
  spread?: number
  total: number
}

export interface HostVerdict {
  host: string
  name: string
  /** the filter that removed the host (absent: feasible) */
  filter?: string
  reason?: string
  scores?: ScoreBreakdown
}

export interface Placement {
  group: string
  /** slot number within the group */
  index: number
  /** peer id */
  host: string
  hostName: string
}

export interface GroupExplanation {
  group: string
  /** the order groups were placed in (callees before callers) */
  order: number
  wanted: number
  placed: number
  /** verdict of every host for the group's first slot */
  hosts: HostVerdict[]
  /** feasible hosts / hosts removed, per filter */
  filtered: Record<string, number>
}

export interface PlacementFailure {
  group: string
  index: number
  reason: string
}

export interface Plan {
  job: string
  placements: Placement[]
  failures: PlacementFailure[]
  groups: GroupExplanation[]
  /** Σ over talking slot pairs of pair weight × estimated RTT (ms) */
  networkCost: number
  /** network cost after the greedy pass, before local search */
  greedyCost: number
  /** moves and swaps local search applied */
  improvements: number
}
