// The rules of a health check that its schema (schemas.ts CheckInput) cannot
// say, and its defaults. Here, below every module, because three of them
// apply the same rules: the services module to definitions and registrations,
// the endpoints module to the checks an attachment declares, and the
// scheduler to a job group's service when the job is submitted (so a bad
// check is refused then, not at each allocation's CNI ADD).
import { PlexusError } from '../lib/errors.js'
import type { CheckSpec, PortSpec } from './records.js'

export const CHECK_DEFAULTS = { intervalMs: 5000, timeoutMs: 2000, failures: 3 } as const

/** Fills check defaults and checks cross-field rules the schema cannot express. */
export function normalizeChecks(checks: Partial<CheckSpec>[] | undefined, ports: PortSpec[]): CheckSpec[] {
  const out: CheckSpec[] = []
  const names = new Set<string>()
  for (const c of checks ?? []) {
    const full = { ...CHECK_DEFAULTS, ...c } as CheckSpec
    if (names.has(full.name))
      throw new PlexusError('PLX_SERVICE_BAD_CHECK', `check "${full.name}" is defined twice`)
    names.add(full.name)
    if (full.type === 'exec' && !full.command?.length)
      throw new PlexusError('PLX_SERVICE_BAD_CHECK', `check "${full.name}": exec needs a command`)
    if (full.type !== 'exec' && full.port === undefined)
      throw new PlexusError('PLX_SERVICE_BAD_CHECK', `check "${full.name}": ${full.type} needs a port`)
    if (typeof full.port === 'string' && !ports.some((p) => p.name === full.port))
      throw new PlexusError('PLX_SERVICE_BAD_CHECK', `check "${full.name}": no port named "${full.port}"`)
    if (full.timeoutMs > full.intervalMs)
      throw new PlexusError(
        'PLX_SERVICE_BAD_CHECK',
        `check "${full.name}": timeout is longer than the interval`,
      )
    out.push(full)
  }
  return out
}
