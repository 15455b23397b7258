// The target host's verdict on allocations placed on it. A host owns its
// capacity: owners place from capacity records that may lag, so two owners
// can each think the last free core is theirs. The host admits in one order
// every host would agree on (older placement first, then id) and refuses what
// does not fit; the owner sees the refusal and places the slot again.
import { type AllocStateValue, type AllocValue, HOLDING, type Resources } from './records.js'

export interface AdmissionInput {
  total: Resources
  /** false while drained */
  eligible: boolean
  /** this host's allocstate records */
  states: AllocStateValue[]
  /** allocations placed on this host that it has not judged yet */
  offered: AllocValue[]
}

export interface Admission {
  admitted: AllocValue[]
  rejected: { alloc: AllocValue; reason: string }[]
  /** what the holding allocations use after these verdicts */
  used: Resources
}

export function usedBy(states: Iterable<AllocStateValue>): Resources {
  const used = { cpu: 0, memoryMb: 0 }
  for (const s of states) {
    if (!HOLDING.has(s.status)) continue
    used.cpu += s.resources.cpu
    used.memoryMb += s.resources.memoryMb
  }
  return used
}

export function admit(input: AdmissionInput): Admission {
  const used = usedBy(input.states)
  const out: Admission = { admitted: [], rejected: [], used }
  const offered = [...input.offered].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
  for (const alloc of offered) {
    const cpu = used.cpu + alloc.resources.cpu
    const mem = used.memoryMb + alloc.resources.memoryMb
    let reason: string | undefined
    if (!input.eligible) reason = 'host is draining'
    else if (cpu > input.total.cpu)
      reason = `cpu: needs ${alloc.resources.cpu}m, ${input.total.cpu - used.cpu}m free`
    else if (mem > input.total.memoryMb)
      reason = `memory: needs ${alloc.resources.memoryMb} MiB, ${input.total.memoryMb - used.memoryMb} MiB free`
    if (reason) {
      out.rejected.push({ alloc, reason })
      continue
    }
    ;[used.cpu, used.memoryMb] = [cpu, mem]
    out.admitted.push(alloc)
  }
  return out
}
