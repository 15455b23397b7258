// Fault points for tests. PLEXUS_TEST_FAULTS names the points to disturb,
// e.g. "add.configured:pause=4000,add.journal:fail": a test can then land a
// SIGKILL between two steps of an operation, or make one step fail, on
// purpose instead of by luck of timing (a pause long enough that the kill, not the
// pause, ends it). Read once at start (configureFaults);
// unset, as in every real run, faultPoint() does nothing.
import { PlexusError } from './errors.js'

type Fault = { kind: 'pause'; ms: number } | { kind: 'fail' }

const SPEC_RE = /^([a-z][a-z0-9.-]*):(?:pause=(\d{1,7})|(fail))$/
let active = new Map<string, Fault>()

/** Parses PLEXUS_TEST_FAULTS; a malformed entry is refused naming it. Returns the active points. */
export function configureFaults(spec: string | undefined): string[] {
  const next = new Map<string, Fault>()
  for (const entry of (spec ?? '').split(',').filter(Boolean)) {
    const m = SPEC_RE.exec(entry.trim())
    if (!m?.[1])
      throw new PlexusError(
        'PLX_FAULTS_INVALID',
        `PLEXUS_TEST_FAULTS: "${entry}" is not POINT:pause=MS or POINT:fail`,
      )
    next.set(m[1], m[2] ? { kind: 'pause', ms: Number(m[2]) } : { kind: 'fail' })
  }
  active = next
  return [...next.keys()]
}

/** Pauses or fails here when a test asked for it; otherwise returns at once. */
export async function faultPoint(name: string): Promise<void> {
  const f = active.get(name)
  if (!f) return
  if (f.kind === 'fail') throw new PlexusError('PLX_FAULT_INJECTED', `fault injected at ${name}`)
  await new Promise((r) => setTimeout(r, f.ms))
}
