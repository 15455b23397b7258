// Service definitions, registrations and health checks: value shapes, keys
// and validation. Everything read from the store arrived possibly by gossip,
// so readers validate too (invalid values are skipped and counted, not trusted).

import { Ajv } from 'ajv'
import { PlexusError } from '../lib/errors.js'
import { lazy, lazyValidator } from '../lib/lazy.js'
import type { EndpointValue, HealthValue, PortSpec, ServiceValue } from '../store/records.js'
import { Checks, LABEL_PATTERN, Ports, Tags } from '../store/schemas.js'
import { HEALTH_PREFIX, REGISTRATION_PREFIX, SERVICE_PREFIX } from '../store/types.js'

const LABEL_RE = new RegExp(LABEL_PATTERN)

export interface CheckSpec {
  /** unique within the service (a DNS label) */
  name: string
  type: 'tcp' | 'http' | 'exec'
  /** tcp/http: port number, or the name of one of the service's ports */
  port?: number | string
  /** http: path, default / */
  path?: string
  /** http: expected status, default: any 2xx */
  status?: number
  /** exec: argv run inside the endpoint's network namespace; exit 0 = passing */
  command?: string[]
  intervalMs: number
  timeoutMs: number
  /** consecutive failures before the endpoint leaves answers */
  failures: number
}

export const CHECK_DEFAULTS = { intervalMs: 5000, timeoutMs: 2000, failures: 3 } as const

/** services/<name>, refined with optional health checks every endpoint of the service gets. */
export interface ServiceDefinition extends ServiceValue {
  checks?: CheckSpec[]
}

/**
 * registrations/<peerId>/<containerId>/<ifname>/<service>: an endpoint joined to a
 * service through the API, usually with a TTL its owner refreshes. Written
 * only by the endpoint's own host; readers check record.owner against the key.
 */
export interface RegistrationValue {
  service: string
  endpointKey: string
  tags: string[]
  ports: PortSpec[]
  checks?: CheckSpec[]
}

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

const serviceValueSchema = {
  type: 'object',
  required: ['name', 'tags', 'ports'],
  properties: { name: { type: 'string', pattern: LABEL_PATTERN }, tags: Tags, ports: Ports, checks: Checks },
} as const

const registrationValueSchema = {
  type: 'object',
  required: ['service', 'endpointKey', 'tags', 'ports'],
  properties: {
    service: { type: 'string', pattern: LABEL_PATTERN },
    endpointKey: { type: 'string', pattern: '^endpoints/' },
    tags: Tags,
    ports: Ports,
    checks: Checks,
  },
} as const

// endpoints/<peer>/...: every module that reads endpoint records (discovery,
// CNI recovery, published ports, links) checks them with this one schema
const publishedSchema = {
  type: 'array',
  maxItems: 64,
  items: {
    type: 'object',
    required: ['hostPort', 'containerPort', 'protocol'],
    properties: {
      hostIp: { type: 'string', format: 'ipv4' },
      hostPort: { type: 'integer', minimum: 1, maximum: 65535 },
      containerPort: { type: 'integer', minimum: 1, maximum: 65535 },
      protocol: { enum: ['tcp', 'udp'] },
    },
  },
} as const

const endpointValueSchema = {
  type: 'object',
  required: ['containerId', 'ifname', 'name', 'host', 'ipv4', 'createdAt'],
  properties: {
    containerId: { type: 'string', minLength: 1 },
    ifname: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1, maxLength: 253 },
    host: { type: 'string' },
    ipv4: { type: 'string', format: 'ipv4' },
    ipv6: { type: 'string', format: 'ipv6' },
    netns: { type: 'string' },
    service: { type: 'string', pattern: LABEL_PATTERN },
    tags: Tags,
    ports: Ports,
    published: publishedSchema,
    createdAt: { type: 'string' },
  },
} as const

const healthValueSchema = {
  type: 'object',
  required: ['endpointKey', 'status'],
  properties: {
    endpointKey: { type: 'string' },
    status: { enum: ['passing', 'critical'] },
    service: { type: 'string' },
    check: { type: 'string' },
  },
} as const

// compiled on first use, not at import: start-up is not slowed by records it may never read (src/lib/lazy.ts)
const ajv = lazy(() => {
  const a = new Ajv({ allErrors: false, strict: false })
  a.addFormat('ipv4', /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/)
  // permissive shape check; the kernel-facing code never sees these, dns-packet encodes them
  a.addFormat('ipv6', /^[0-9a-fA-F:.]{2,45}$/)
  return a
})

export const isServiceValue = lazyValidator(() => ajv().compile<ServiceDefinition>(serviceValueSchema))
export const isRegistrationValue = lazyValidator(() =>
  ajv().compile<RegistrationValue>(registrationValueSchema),
)
export const isEndpointValue = lazyValidator(() => ajv().compile<EndpointValue>(endpointValueSchema))
export const isHealthValue = lazyValidator(() => ajv().compile<HealthValue>(healthValueSchema))

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
