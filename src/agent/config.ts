import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import {
  findNodeAtLocation,
  type Node,
  type ParseError,
  parse,
  parseTree,
  printParseErrorCode,
} from 'jsonc-parser'
import { DEFAULT_APP_REQUESTS_PER_SECOND } from '../api/app-api.js'
import { DEFAULT_APP_PORT } from '../api/app-listener.js'
import { type MetricsConfig, metricsConfigSchema } from '../api/metrics-listener.js'
import { type ApiLimits, apiLimitsSchema, DEFAULT_API_LIMITS, parseListen } from '../api/server.js'
import { type TcpApiConfig, tcpApiConfigSchema } from '../api/tcp-listener.js'
import type { ClusterConfig } from '../cluster/config.js'
import type { DatapathConfig } from '../datapath/config.js'
import { FIREWALL_KINDS } from '../datapath/firewall/index.js'
import { type DnsConfig, defaultDnsConfig, dnsConfigSchema } from '../dns/config.js'
import { type LeaseConfig, networkConfigSchema } from '../ipam/config.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import type { LogLevel } from '../lib/log.js'
import { DEFAULT_PORT_RANGE, type PortsConfig } from '../ports/publish.js'
import type { RunnerConfig } from '../runner/service.js'
import type { SchedulerConfig } from '../scheduler/service.js'
import type { TrafficConfig } from '../traffic/service.js'

/** plexusd configuration. The file is JSON (comments allowed); flags override it. Documented in docs/config.md. */
export interface AgentConfig {
  /** host name in the cluster (DNS <name>.node.plexus.internal, `plexctl hosts`) */
  name: string
  stateDir: string
  runDir: string
  logLevel: LogLevel
  api: {
    /** primary unix socket, mode 0600 */
    socket: string
    /** further unix sockets (e.g. one bind-mounted into a runtime's namespace) */
    extraSockets: string[]
    /** port of the application API on the bridge gateway (src/api/README.md); 0: not served */
    appPort: number
    /** requests one address may make on the application API each second; more get 429 */
    appRequestsPerSecond: number
  } & ApiLimits &
    TcpApiConfig
  cluster: ClusterConfig
  /** underlay address other hosts reach this one at (default: the address of the default-route interface) */
  underlayAddress?: string
  /** underlay interface (default: the one carrying the default route or underlayAddress) */
  underlayInterface?: string
  /** host labels, shown in `plexctl hosts` and used by the scheduler */
  labels: Record<string, string>
  /** embedded DNS server (src/dns/README.md) */
  dns: DnsConfig
  /** cluster network: what this host seeds into a cluster that has none, and its subnet lease timing */
  network: LeaseConfig
  /** overlay datapath (src/datapath/README.md) */
  datapath: DatapathConfig
  /** published ports (src/ports/README.md) */
  ports: PortsConfig
  /** what this host offers to the scheduler (src/scheduler/README.md); default: all cpus and memory */
  scheduler?: SchedulerConfig
  /** runs this host's allocations (src/runner/README.md) */
  runner?: RunnerConfig
  /** bytes between services, measured from conntrack (src/traffic/README.md) */
  traffic?: TrafficConfig
  /** GET /metrics on TCP besides the API sockets (src/api/README.md); off by default */
  metrics: MetricsConfig
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal']

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' },
    stateDir: { type: 'string', minLength: 1 },
    runDir: { type: 'string', minLength: 1 },
    logLevel: { enum: LOG_LEVELS },
    api: {
      type: 'object',
      additionalProperties: false,
      properties: {
        socket: { type: 'string', minLength: 1 },
        extraSockets: { type: 'array', items: { type: 'string', minLength: 1 } },
        appPort: { type: 'integer', minimum: 0, maximum: 65535 },
        appRequestsPerSecond: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        ...apiLimitsSchema,
        ...tcpApiConfigSchema,
      },
    },
    cluster: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { type: 'array', items: { type: 'string', pattern: '^/' } },
        announce: { type: 'array', items: { type: 'string', pattern: '^/' } },
        bootstrap: { type: 'array', items: { type: 'string', pattern: '^/' } },
        key: { type: 'string' },
        keyFile: { type: 'string' },
        heartbeatIntervalMs: { type: 'integer', minimum: 100, maximum: 60_000 },
        refreshIntervalMs: { type: 'integer', minimum: 100, maximum: 86_400_000 },
        nodeTtlMs: { type: 'integer', minimum: 1000, maximum: 86_400_000 },
        suspectAfterMs: { type: 'integer', minimum: 200, maximum: 3_600_000 },
        deadAfterMs: { type: 'integer', minimum: 400, maximum: 3_600_000 },
        syncIntervalMs: { type: 'integer', minimum: 100, maximum: 600_000 },
        probeIntervalMs: { type: 'integer', minimum: 100, maximum: 600_000 },
        redialMinMs: { type: 'integer', minimum: 50, maximum: 600_000 },
        redialMaxMs: { type: 'integer', minimum: 50, maximum: 3_600_000 },
        targetPeers: { type: 'integer', minimum: 1, maximum: 1000 },
        reapAfterMs: { type: 'integer', minimum: 10_000, maximum: 30 * 86_400_000 },
      },
    },
    underlayAddress: { type: 'string', format: 'ipv4' },
    underlayInterface: { type: 'string', minLength: 1, maxLength: 15 },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    dns: dnsConfigSchema,
    network: {
      type: 'object',
      additionalProperties: false,
      properties: {
        seed: { anyOf: [networkConfigSchema, { const: false }] },
        leaseTtlMs: { type: 'integer', minimum: 1000, maximum: 30 * 86_400_000 },
        leaseSettleMs: { type: 'integer', minimum: 0, maximum: 600_000 },
        leaseRenewMs: { type: 'integer', minimum: 100, maximum: 86_400_000 },
        leaseClockDriftMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
      },
    },
    datapath: {
      type: 'object',
      additionalProperties: false,
      properties: {
        firewall: { enum: FIREWALL_KINDS },
        reconcileIntervalMs: { type: 'integer', minimum: 200, maximum: 5000 },
        wireguardRotationSettleMs: { type: 'integer', minimum: 500, maximum: 600_000 },
      },
    },
    metrics: metricsConfigSchema,
    ports: {
      type: 'object',
      additionalProperties: false,
      properties: {
        range: {
          type: 'array',
          minItems: 2,
          maxItems: 2,
          items: { type: 'integer', minimum: 1, maximum: 65535 },
        },
      },
    },
    scheduler: {
      type: 'object',
      additionalProperties: false,
      properties: {
        capacity: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cpu: { type: 'integer', minimum: 0, maximum: 100_000_000 },
            memoryMb: { type: 'integer', minimum: 0, maximum: 100_000_000 },
          },
        },
      },
    },
    traffic: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        sampleMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
        tauMs: { type: 'integer', minimum: 10_000, maximum: 604_800_000 },
      },
    },
    runner: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        cniPath: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'string', pattern: '^/' } },
        logs: {
          type: 'object',
          additionalProperties: false,
          properties: {
            // multilog's own bounds: at least 4096 bytes a file, at least 2 files
            maxBytes: { type: 'integer', minimum: 4096, maximum: 1_073_741_824 },
            files: { type: 'integer', minimum: 2, maximum: 100 },
          },
        },
        podman: {
          type: 'object',
          additionalProperties: false,
          properties: {
            binary: { type: 'string', pattern: '^[A-Za-z0-9_./-]{1,4096}$' },
            root: { type: 'string', pattern: '^/' },
            runroot: { type: 'string', pattern: '^/' },
          },
        },
      },
    },
  },
} as const

const ajv = new Ajv({ allErrors: false, strict: true })
ajv.addFormat('ipv4', /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/)
const validate = ajv.compile(schema)

export function defaultConfig(): AgentConfig {
  const runDir = '/run/plexus'
  return {
    name: sanitizeHostname(hostname()),
    stateDir: '/var/lib/plexus',
    runDir,
    logLevel: 'info',
    api: {
      socket: join(runDir, 'plexusd.sock'),
      extraSockets: [],
      appPort: DEFAULT_APP_PORT,
      appRequestsPerSecond: DEFAULT_APP_REQUESTS_PER_SECOND,
      ...DEFAULT_API_LIMITS,
    },
    cluster: {
      listen: ['/ip4/0.0.0.0/tcp/7373'],
      announce: [],
      bootstrap: [],
      // see src/cluster/README.md for how these bound failure detection and convergence
      heartbeatIntervalMs: 1000,
      refreshIntervalMs: 10_000,
      nodeTtlMs: 30_000,
      suspectAfterMs: 3000,
      deadAfterMs: 6000,
      syncIntervalMs: 2000,
      probeIntervalMs: 2000,
      redialMinMs: 500,
      // short cap: after a partition heals, hosts find each other again within seconds
      redialMaxMs: 5000,
      targetPeers: 16,
      reapAfterMs: 86_400_000,
    },
    labels: {},
    dns: defaultDnsConfig(),
    network: { seed: {}, leaseTtlMs: 86_400_000, leaseSettleMs: 3000, leaseClockDriftMs: 60_000 },
    datapath: { firewall: 'auto', reconcileIntervalMs: 3000, wireguardRotationSettleMs: 5000 },
    ports: { range: [DEFAULT_PORT_RANGE[0], DEFAULT_PORT_RANGE[1]] },
    metrics: {},
  }
}

function sanitizeHostname(h: string): string {
  const s = h
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
  return s.slice(0, 63) || 'host'
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, col: offset - lineStart + 1 }
}

function fieldError(file: string, text: string, tree: Node | undefined, err: ErrorObject): PlexusError {
  const path = err.instancePath
    .split('/')
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')))
  let field = path.join('.')
  let message = err.message ?? 'is invalid'
  if (err.keyword === 'additionalProperties') {
    const extra = String((err.params as { additionalProperty: string }).additionalProperty)
    path.push(extra)
    field = path.join('.')
    message = 'is not a known field'
  }
  const node = tree ? findNodeAtLocation(tree, path) : undefined
  // Point at the key for unknown fields, at the value otherwise.
  const offset = node
    ? err.keyword === 'additionalProperties' && node.parent
      ? node.parent.offset
      : node.offset
    : 0
  const { line, col } = lineCol(text, offset)
  return new PlexusError(
    'PLX_CONFIG_INVALID',
    `${file}:${line}:${col}: field "${field || '(root)'}" ${message}`,
    { file, line, col, field },
  )
}

/** Parse and validate a config file's text; errors name the file, line and field. */
export function parseConfigText(file: string, text: string): Partial<AgentConfig> {
  const errors: ParseError[] = []
  const value = parse(text, errors, { allowTrailingComma: false, disallowComments: false })
  const first = errors[0]
  if (first) {
    const { line, col } = lineCol(text, first.offset)
    throw new PlexusError(
      'PLX_CONFIG_SYNTAX',
      `${file}:${line}:${col}: ${printParseErrorCode(first.error)}`,
      { file, line, col },
    )
  }
  if (!validate(value)) {
    const err = validate.errors?.[0]
    if (err) throw fieldError(file, text, parseTree(text), err)
  }
  const partial = value as Partial<AgentConfig>
  for (const [field, listen] of [
    ['metrics.listen', partial.metrics?.listen],
    ['api.listen', partial.api?.listen],
  ] as const) {
    if (listen === undefined) continue
    try {
      parseListen(listen, field)
    } catch (err) {
      throw new PlexusError('PLX_CONFIG_INVALID', `${file}: ${errorMessage(err)}`, { file, field })
    }
  }
  return value as Partial<AgentConfig>
}

export function loadConfigFile(file: string): Partial<AgentConfig> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new PlexusError('PLX_CONFIG_READ', `${file}: ${(err as Error).message}`)
  }
  return parseConfigText(file, text)
}

/** Merge defaults < file < flags. runDir moves the default socket with it. */
export function resolveConfig(file: Partial<AgentConfig>, flags: Partial<AgentConfig>): AgentConfig {
  const base = defaultConfig()
  const runDir = flags.runDir ?? file.runDir ?? base.runDir
  return {
    ...base,
    ...file,
    ...stripUndefined(flags),
    runDir,
    api: {
      ...base.api,
      ...file.api,
      socket: flags.api?.socket ?? file.api?.socket ?? join(runDir, 'plexusd.sock'),
      extraSockets: [...(file.api?.extraSockets ?? []), ...(flags.api?.extraSockets ?? [])],
    },
    cluster: { ...base.cluster, ...file.cluster, ...stripUndefined(flags.cluster ?? {}) },
    labels: { ...file.labels, ...flags.labels },
    dns: { ...base.dns, ...file.dns, ...flags.dns },
    network: { ...base.network, ...file.network },
    datapath: { ...base.datapath, ...file.datapath },
    ports: { ...base.ports, ...file.ports },
    metrics: { ...base.metrics, ...file.metrics, ...stripUndefined(flags.metrics ?? {}) },
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
