// Service definitions, registrations and health checks: keys, names and the
// rules of checks. The value shapes are the store's (src/store/records.ts),
// and every reader decodes them through src/store/codecs.ts: what arrived by
// gossip is skipped and counted when it does not decode, never trusted.

import { PlexusError } from '../lib/errors.js'
import type { CheckSpec, PortSpec } from '../store/records.js'
import { LABEL_PATTERN } from '../store/schemas.js'
import { HEALTH_PREFIX, REGISTRATION_PREFIX, SERVICE_PREFIX } from '../store/types.js'

const LABEL_RE = new RegExp(LABEL_PATTERN)

export const CHECK_DEFAULTS = { intervalMs: 5000, timeoutMs: 2000, failures: 3 } as const

export const serviceKey = (name: string): string => `${SERVICE_PREFIX}${name}`
export const registrationKey = (peer: string, cid: string, ifname: string, service: string): string =>
  `${REGISTRATION_PREFIX}${peer}/${cid}/${ifname}/${service}`
/** health check ids are one key segment: endpoint, service and check joined by ':' (none may contain it) */
export const healthKey = (
  peer: string,
  cid: string,
  ifname: string,
  service: string,
  check: string,
): string => `${HEALTH_PREFIX}${peer}/${cid}:${ifname}:${service}:${check}`

/** The peer id segment of an owned key (endpoints/<peer>/..., registrations/<peer>/...). */
export function keyPeer(key: string): string {
  return key.split('/')[1] ?? ''
}

/** Validates a service or tag name from outside (path parameter, CLI). */
export function assertLabel(what: string, value: string): void {
  if (!LABEL_RE.test(value))
    throw new PlexusError(
      'PLX_SERVICE_BAD_NAME',
      `${what} "${value}" must be a DNS label: lower-case letters, digits and '-', 1-63 characters`,
    )
}

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
