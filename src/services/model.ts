// Service definitions, registrations and health checks: keys and names (the
// rules of checks are the store's: src/store/checks.ts). The value shapes are the store's (src/store/records.ts),
// and every reader decodes them through src/store/codecs.ts: what arrived by
// gossip is skipped and counted when it does not decode, never trusted.

import { PlexusError } from '../lib/errors.js'
import { LABEL_PATTERN } from '../store/schemas.js'
import { HEALTH_PREFIX, REGISTRATION_PREFIX, SERVICE_PREFIX } from '../store/types.js'

const LABEL_RE = new RegExp(LABEL_PATTERN)

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
