// The job spec: its types, its JSON schema (the one contract for the API, the
// CLI and docs/jobs.md) and the validator. A job arrives as YAML or JSON text
// (plexctl job plan|run FILE) or as a JSON body (/v1/jobs); either way every
// problem is reported at once, each with its path (and line, from text), and
// nothing is placed or written unless the whole spec is valid.

import { Ajv, type ErrorObject } from 'ajv'
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml'
import { CLUSTER_NETWORK_NAME } from '../ipam/bridge.js'
import {
  type AddressingProblem,
  MAX_ROUTES,
  type RouteRequest,
  readGateway,
  readMac,
  readRoutes,
  readStaticIp,
} from '../lib/addressing.js'
import { errorMessage, PlexusError } from '../lib/errors.js'
import { lazyValidator } from '../lib/lazy.js'
import { compileTemplate } from '../lib/template.js'
import { normalizeChecks } from '../store/checks.js'
import { type CheckInput, Checks, LABEL_PATTERN, Ports } from '../store/schemas.js'

export type JobType = 'service' | 'batch' | 'system'
export type Balance = 'spread' | 'binpack'

/** `=` `!=` `in` `not_in` `regexp` `exists` compare one host attribute; the rest relate allocations. */
export type ConstraintOperator =
  | '='
  | '!='
  | 'in'
  | 'not_in'
  | 'regexp'
  | 'exists'
  | 'distinct_hosts'
  | 'distinct_property'

/**
 * A host attribute: `name`, `address`, `zone` (the `zone` label) or
 * `labels.<key>` (any label the host advertises).
 */
export type Attribute = string

export interface Constraint {
  operator: ConstraintOperator
  /** required by every operator except distinct_hosts */
  attribute?: Attribute
  /** `=` `!=` `regexp` */
  value?: string
  /** `in` `not_in` */
  values?: string[]
  /** distinct_property: at most this many allocations of the job per attribute value (default 1) */
  limit?: number
}

/** Soft: to a host attribute (operator as in constraints) or to hosts running a service. */
export interface Affinity {
  attribute?: Attribute
  operator?: '=' | '!=' | 'in' | 'not_in' | 'regexp' | 'exists'
  value?: string
  values?: string[]
  service?: string
  /** -100..100, negative = avoid; default 50 */
  weight?: number
}

/** Hard: never on a host that runs an allocation of this service. */
export interface AntiAffinity {
  service: string
}

export interface Spread {
  attribute: Attribute
  /** 1..100, default 50 */
  weight?: number
  /** percent of the group's allocations per attribute value; absent: even over the values seen */
  targets?: { value: string; percent: number }[]
}

export interface TalksTo {
  /** a group of this job (its service name or group name) or any service in the cluster */
  service: string
  /** relative traffic weight, default 1 */
  weight?: number
  /** hard bound on the estimated RTT to it */
  maxRttMs?: number
}

export interface TaskSpec {
  name: string
  driver: 'exec' | 'podman'
  config: {
    command?: string[]
    image?: string
    rootfs?: string
    user?: string
    env?: Record<string, string>
  }
  /** pids: the most processes the task may have at once (the runner's default when absent) */
  resources: { cpu: number; memoryMb: number; pids?: number }
  /** stop: SIGTERM, then SIGKILL after this long (the runner's default when absent) */
  killTimeoutMs?: number
  /** files rendered from the store into the task's directory (as consul-template and Nomad's template block) */
  templates?: TaskTemplate[]
}

/** signals a template change may send a task */
export const TEMPLATE_SIGNALS = [
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
  'SIGINT',
  'SIGQUIT',
  'SIGTERM',
  'SIGWINCH',
] as const

export interface TaskTemplate {
  /** the template: Handlebars with key, tree, service and json, as `plexctl template` (docs/jobs.md) */
  data: string
  /** the file, relative to the task's directory (PLEXUS_TASK_DIR) */
  dest: string
  /** what a render that changed the file does to the running task: restart it (default), signal it, nothing */
  changeMode?: 'restart' | 'signal' | 'noop'
  /** with changeMode signal (default SIGHUP) */
  signal?: (typeof TEMPLATE_SIGNALS)[number]
  /** the file's mode, octal (default 0644) */
  perms?: string
}

export interface GroupService {
  name: string
  ports?: { name?: string; port: number; protocol: 'tcp' | 'udp' }[]
  /** the services module's checks, as written (src/store/schemas.ts CheckInput); an allocation is healthy once all pass */
  checks?: CheckInput[]
}

export interface GroupSpec {
  name: string
  /** ignored for system jobs (one per eligible host) */
  count: number
  tasks: TaskSpec[]
  constraints?: Constraint[]
  affinities?: Affinity[]
  antiAffinities?: AntiAffinity[]
  spread?: Spread[]
  talksTo?: TalksTo[]
  service?: GroupService
  ports?: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[]
  /** `TARGET[:ALIAS]` as `plexctl link` takes it */
  links?: string[]
  /**
   * the networks its allocations join, one interface each in this order (eth0, eth1, …), by name:
   * `plexus` is the cluster network, any other a named network (`plexctl network create`).
   * Absent: the cluster network alone. A group that names networks is on the cluster network
   * only when it names `plexus` (Docker's rule: a container on a user network is not on the default one)
   */
  networks?: string[]
  /** the first interface's addressing: what a runtime asks the CNI plugin for (src/lib/addressing.ts rules) */
  network?: GroupNetwork
  restart?: {
    policy: 'always' | 'on-failure' | 'never'
    attempts?: number
    delayMs?: number
    maxDelayMs?: number
  }
  /** placing a failed allocation's slot again (reschedule.ts): delay, backoff, how often */
  reschedule?: {
    attempts?: number
    intervalMs?: number
    delayMs?: number
    maxDelayMs?: number
    unlimited?: boolean
  }
  /** healthyDeadlineMs: how long a replacement may take to become healthy before the update counts as failed */
  update?: { maxParallel?: number; minHealthyMs?: number; healthyDeadlineMs?: number; autoRevert?: boolean }
}

/**
 * Addressing of a group's allocation (one interface, shared by its tasks).
 * A static address and a MAC are one container's, so only a group of one
 * allocation may ask for them; the address must lie in the subnet of the host
 * it runs on (pin it with a `name` constraint).
 */
export interface GroupNetwork {
  ip?: string
  mac?: string
  /** its default route's next hop, an address of the host subnet (default: the bridge) */
  gateway?: string
  /** extra routes, {dst, gw} as the CNI result spells them (gw absent: the gateway) */
  routes?: RouteRequest[]
}

export interface JobSpec {
  name: string
  type: JobType
  balance?: Balance
  /** apply to every group, before the group's own */
  constraints?: Constraint[]
  affinities?: Affinity[]
  groups: GroupSpec[]
}

/**
 * A group joins at most this many networks: each is a CNI ADD (and a DEL) when its allocation starts
 * (and stops), one after another, and an interface in its namespace
 */
export const MAX_NETWORKS = 8

/** every name in a job is a DNS label */
const dnsLabel = { type: 'string', pattern: LABEL_PATTERN }
const attribute = { type: 'string', pattern: '^(name|address|zone|labels\\.[A-Za-z0-9_./-]{1,63})$' }
const strings = { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 253 } }
const matchOps = ['=', '!=', 'in', 'not_in', 'regexp', 'exists']

const constraint = {
  type: 'object',
  additionalProperties: false,
  required: ['operator'],
  properties: {
    operator: { enum: [...matchOps, 'distinct_hosts', 'distinct_property'] },
    attribute,
    value: { type: 'string', maxLength: 253 },
    values: strings,
    limit: { type: 'integer', minimum: 1, maximum: 10_000 },
  },
} as const

const affinity = {
  type: 'object',
  additionalProperties: false,
  properties: {
    attribute,
    operator: { enum: matchOps },
    value: { type: 'string', maxLength: 253 },
    values: strings,
    service: dnsLabel,
    weight: { type: 'integer', minimum: -100, maximum: 100, not: { const: 0 } },
  },
} as const

const protocol = { enum: ['tcp', 'udp'] }
/** antiAffinities and talksTo entries: a service and the entry's own fields */
const serviceRef = (more: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['service'],
  properties: { service: dnsLabel, ...more },
})
const port = { type: 'integer', minimum: 1, maximum: 65535 }

const task = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'driver', 'config', 'resources'],
  properties: {
    name: dnsLabel,
    driver: { enum: ['exec', 'podman'] },
    config: {
      type: 'object',
      additionalProperties: false,
      properties: {
        command: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 4096 } },
        image: { type: 'string', minLength: 1, maxLength: 512 },
        rootfs: { type: 'string', pattern: '^/' },
        user: { type: 'string', minLength: 1, maxLength: 64 },
        env: {
          type: 'object',
          maxProperties: 256,
          propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
          additionalProperties: { type: 'string', maxLength: 32_768 },
        },
      },
    },
    resources: {
      type: 'object',
      additionalProperties: false,
      required: ['cpu', 'memoryMb'],
      properties: {
        cpu: { type: 'integer', minimum: 1, maximum: 1_024_000 },
        memoryMb: { type: 'integer', minimum: 1, maximum: 16_777_216 },
        pids: { type: 'integer', minimum: 1, maximum: 4_194_304 },
      },
    },
    killTimeoutMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    templates: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['data', 'dest'],
        properties: {
          data: { type: 'string', minLength: 1, maxLength: 32_768 },
          dest: { type: 'string', pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$', maxLength: 255 },
          changeMode: { enum: ['restart', 'signal', 'noop'] },
          signal: { enum: TEMPLATE_SIGNALS },
          perms: { type: 'string', pattern: '^0?[0-7]{3}$' },
        },
      },
    },
  },
} as const

const group = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'tasks'],
  properties: {
    name: dnsLabel,
    count: { type: 'integer', minimum: 0, maximum: 10_000 },
    tasks: { type: 'array', minItems: 1, maxItems: 32, items: task },
    constraints: { type: 'array', maxItems: 64, items: constraint },
    affinities: { type: 'array', maxItems: 64, items: affinity },
    antiAffinities: { type: 'array', maxItems: 64, items: serviceRef() },
    spread: {
      type: 'array',
      maxItems: 8,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['attribute'],
        properties: {
          attribute,
          weight: { type: 'integer', minimum: 1, maximum: 100 },
          targets: {
            type: 'array',
            minItems: 1,
            maxItems: 256,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['value', 'percent'],
              properties: {
                value: { type: 'string', maxLength: 253 },
                percent: { type: 'number', minimum: 0, maximum: 100 },
              },
            },
          },
        },
      },
    },
    talksTo: {
      type: 'array',
      maxItems: 64,
      items: serviceRef({
        weight: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
        maxRttMs: { type: 'number', exclusiveMinimum: 0, maximum: 60_000 },
      }),
    },
    // the services module's own definition fields (ports, checks)
    service: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: dnsLabel,
        ports: Ports,
        checks: Checks,
      },
    },
    ports: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['hostPort', 'containerPort', 'protocol'],
        properties: { hostPort: port, containerPort: port, protocol },
      },
    },
    links: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 130 } },
    networks: { type: 'array', minItems: 1, maxItems: MAX_NETWORKS, items: dnsLabel },
    // the values' rules are src/lib/addressing.ts's, checked in networkProblems with every reason
    network: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ip: { type: 'string', maxLength: 18 },
        mac: { type: 'string', maxLength: 17 },
        gateway: { type: 'string', maxLength: 15 },
        routes: {
          type: 'array',
          maxItems: MAX_ROUTES,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['dst'],
            properties: { dst: { type: 'string', maxLength: 18 }, gw: { type: 'string', maxLength: 15 } },
          },
        },
      },
    },
    restart: {
      type: 'object',
      additionalProperties: false,
      required: ['policy'],
      properties: {
        policy: { enum: ['always', 'on-failure', 'never'] },
        attempts: { type: 'integer', minimum: 0, maximum: 1000 },
        delayMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
        maxDelayMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
      },
    },
    reschedule: {
      type: 'object',
      additionalProperties: false,
      properties: {
        attempts: { type: 'integer', minimum: 0, maximum: 1000 },
        intervalMs: { type: 'integer', minimum: 1000, maximum: 7 * 86_400_000 },
        delayMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
        maxDelayMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
        unlimited: { type: 'boolean' },
      },
    },
    update: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxParallel: { type: 'integer', minimum: 1, maximum: 1000 },
        minHealthyMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
        healthyDeadlineMs: { type: 'integer', minimum: 1000, maximum: 86_400_000 },
        autoRevert: { type: 'boolean' },
      },
    },
  },
} as const

/** JSON schema of a job spec (also the body of the /v1/jobs routes). */
export const jobSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'groups'],
  properties: {
    name: dnsLabel,
    type: { enum: ['service', 'batch', 'system'] },
    balance: { enum: ['spread', 'binpack'] },
    constraints: { type: 'array', maxItems: 64, items: constraint },
    affinities: { type: 'array', maxItems: 64, items: affinity },
    groups: { type: 'array', minItems: 1, maxItems: 256, items: group },
  },
} as const

export interface SpecProblem {
  /** dotted path into the spec, e.g. groups.1.tasks.0.resources.cpu ('' = the whole spec) */
  path: string
  message: string
  /** 1-based, when the spec came as text */
  line?: number
}

// compiled on the first spec, not at import: most agents never see one (src/lib/lazy.ts)
const validateShape = lazyValidator(() =>
  new Ajv({ allErrors: true, strict: false }).compile<JobSpec>(jobSchema),
)

const LINK_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}(:[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62})?$/

function shapeProblem(e: ErrorObject): SpecProblem {
  const parts = e.instancePath.split('/').slice(1)
  if (e.keyword === 'additionalProperties') {
    parts.push(String((e.params as { additionalProperty: string }).additionalProperty))
    return { path: parts.join('.'), message: 'is not a known field' }
  }
  if (e.keyword === 'required') {
    parts.push(String((e.params as { missingProperty: string }).missingProperty))
    return { path: parts.join('.'), message: 'is required' }
  }
  if (e.keyword === 'enum') {
    const allowed = (e.params as { allowedValues: unknown[] }).allowedValues
    return {
      path: parts.join('.'),
      message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`,
    }
  }
  return { path: parts.join('.'), message: e.message ?? 'is invalid' }
}

/** What a spec is checked against besides itself (the API has the store; a spec read alone has not). */
export interface SpecContext {
  /** the named networks (config/networks/) by name, with their driver; absent: `networks` names are not looked up */
  networks?: ReadonlyMap<string, 'bridge' | 'macvlan'>
}

/** Rules the schema cannot say: per-operator fields, names unique, regexps that compile. */
function meaningProblems(job: JobSpec, ctx: SpecContext): SpecProblem[] {
  const out: SpecProblem[] = []
  const matchFields = (
    path: string,
    c: { operator?: string; attribute?: string; value?: string; values?: string[] },
  ) => {
    const op = c.operator ?? '='
    if (op !== 'distinct_hosts' && c.attribute === undefined) {
      out.push({ path: `${path}.attribute`, message: `is required by operator "${op}"` })
    }
    const needsValue = op === '=' || op === '!=' || op === 'regexp'
    const needsValues = op === 'in' || op === 'not_in'
    if (needsValue && c.value === undefined)
      out.push({ path: `${path}.value`, message: `is required by operator "${op}"` })
    if (!needsValue && c.value !== undefined)
      out.push({ path: `${path}.value`, message: `is not used by operator "${op}"` })
    if (needsValues && c.values === undefined)
      out.push({ path: `${path}.values`, message: `is required by operator "${op}"` })
    if (!needsValues && c.values !== undefined)
      out.push({ path: `${path}.values`, message: `is not used by operator "${op}"` })
    if (op === 'regexp' && c.value !== undefined) {
      try {
        new RegExp(c.value)
      } catch (err) {
        out.push({
          path: `${path}.value`,
          message: `is not a valid regular expression: ${(err as Error).message}`,
        })
      }
    }
  }
  const constraints = (path: string, list: Constraint[] | undefined) =>
    list?.forEach((c, i) => {
      matchFields(`${path}.${i}`, c)
      if (c.limit !== undefined && c.operator !== 'distinct_property') {
        out.push({ path: `${path}.${i}.limit`, message: 'is only used by distinct_property' })
      }
    })
  const affinities = (path: string, list: Affinity[] | undefined) =>
    list?.forEach((a, i) => {
      const p = `${path}.${i}`
      if ((a.service === undefined) === (a.attribute === undefined)) {
        out.push({ path: p, message: 'needs exactly one of "attribute" or "service"' })
      } else if (a.attribute !== undefined) matchFields(p, a)
      else if (a.operator || a.value !== undefined || a.values !== undefined) {
        out.push({ path: p, message: 'a service affinity takes only "service" and "weight"' })
      }
    })
  constraints('constraints', job.constraints)
  affinities('affinities', job.affinities)
  const groupNames = new Map<string, number>()
  const serviceNames = new Map<string, number>()
  job.groups.forEach((g, gi) => {
    const gp = `groups.${gi}`
    const seen = groupNames.get(g.name)
    if (seen !== undefined)
      out.push({ path: `${gp}.name`, message: `"${g.name}" is also the name of groups.${seen}` })
    else groupNames.set(g.name, gi)
    if (g.service) {
      const other = serviceNames.get(g.service.name)
      if (other !== undefined) {
        out.push({
          path: `${gp}.service.name`,
          message: `"${g.service.name}" is also the service of groups.${other}`,
        })
      } else serviceNames.set(g.service.name, gi)
      // the rules every allocation's CNI ADD would apply (src/endpoints): refused now, not at each ADD
      try {
        normalizeChecks(g.service.checks, g.service.ports ?? [])
      } catch (err) {
        out.push({ path: `${gp}.service.checks`, message: errorMessage(err) })
      }
    }
    if (job.type !== 'system' && g.count === undefined)
      out.push({ path: `${gp}.count`, message: `is required for a ${job.type} job` })
    const taskNames = new Set<string>()
    g.tasks.forEach((t, ti) => {
      if (taskNames.has(t.name))
        out.push({ path: `${gp}.tasks.${ti}.name`, message: `"${t.name}" is used twice in this group` })
      taskNames.add(t.name)
      templateProblems(`${gp}.tasks.${ti}.templates`, t.templates ?? [], out)
      const c = t.config
      if (t.driver === 'exec' && !c.command)
        out.push({ path: `${gp}.tasks.${ti}.config.command`, message: 'is required by the exec driver' })
      if (t.driver === 'podman' && !c.image === !c.rootfs) {
        out.push({
          path: `${gp}.tasks.${ti}.config`,
          message: 'the podman driver needs "image" or "rootfs" (one of them)',
        })
      }
      if (t.driver === 'exec' && c.image)
        out.push({
          path: `${gp}.tasks.${ti}.config.image`,
          message: 'the exec driver runs no image (use rootfs)',
        })
    })
    constraints(`${gp}.constraints`, g.constraints)
    affinities(`${gp}.affinities`, g.affinities)
    g.spread?.forEach((s, si) => {
      const sum = (s.targets ?? []).reduce((a, t) => a + t.percent, 0)
      if (sum > 100)
        out.push({
          path: `${gp}.spread.${si}.targets`,
          message: `percentages add up to ${sum}, more than 100`,
        })
    })
    const hostPorts = new Set<string>()
    g.ports?.forEach((p, pi) => {
      const k = `${p.hostPort}/${p.protocol}`
      if (hostPorts.has(k))
        out.push({ path: `${gp}.ports.${pi}`, message: `host port ${k} is published twice` })
      hostPorts.add(k)
    })
    g.links?.forEach((l, li) => {
      if (!LINK_RE.test(l))
        out.push({ path: `${gp}.links.${li}`, message: `a link is TARGET[:ALIAS], got "${l}"` })
    })
    if (g.networks) joinedProblems(gp, g, ctx, out)
    if (g.network)
      networkProblems(`${gp}.network`, g.network, job.type === 'system' ? 'system' : g.count, out)
    g.talksTo?.forEach((t, ti) => {
      if (t.service === g.service?.name || t.service === g.name) {
        out.push({
          path: `${gp}.talksTo.${ti}.service`,
          message: 'a group does not talk to itself over the network',
        })
      }
    })
  })
  return out
}

/**
 * The networks a group joins: each once, each one there is (when the context knows them), and
 * published ports only where the first interface has a host side (a macvlan interface is on the
 * underlay itself: the CNI plugin refuses ports there, code 7).
 */
function joinedProblems(gp: string, g: GroupSpec, ctx: SpecContext, out: SpecProblem[]): void {
  const seen = new Map<string, number>()
  g.networks?.forEach((name, i) => {
    const p = `${gp}.networks.${i}`
    const first = seen.get(name)
    if (first !== undefined) out.push({ path: p, message: `"${name}" is also ${gp}.networks.${first}` })
    else seen.set(name, i)
    if (name === CLUSTER_NETWORK_NAME || !ctx.networks) return
    const driver = ctx.networks.get(name)
    if (!driver)
      out.push({
        path: p,
        message: `no network "${name}" (plexctl network ls lists them; "${CLUSTER_NETWORK_NAME}" is the cluster network)`,
      })
    else if (i === 0 && driver === 'macvlan' && g.ports?.length)
      out.push({
        path: p,
        message: `"${name}" is a macvlan network, on the underlay itself: the group's ports cannot be published on its first interface`,
      })
  })
}

/**
 * A group's addressing: the CNI plugin's rules (src/lib/addressing.ts), each
 * problem at its path. count: the group's, or 'system' (one per host).
 */
function networkProblems(path: string, n: GroupNetwork, count: number | 'system', out: SpecProblem[]): void {
  const found: AddressingProblem[] = []
  if (n.ip !== undefined) readStaticIp('ip', n.ip, found)
  if (n.mac !== undefined) readMac('mac', n.mac, found)
  if (n.gateway !== undefined) readGateway('gateway', n.gateway, found)
  if (n.routes !== undefined) readRoutes('routes', n.routes, found)
  for (const f of ['ip', 'mac'] as const) {
    if (n[f] === undefined || count === 1 || count === 0) continue
    const what = f === 'ip' ? 'a static address' : 'a MAC address'
    const runs =
      count === 'system' ? 'a system job runs one allocation per host' : `the group runs ${count} allocations`
    found.push({
      field: f,
      message: `is ${what}, one container's: ${runs}; ask for it in a group of count 1`,
    })
  }
  // readRoutes names an item as routes[i]; a spec path is dotted
  for (const p of found)
    out.push({ path: `${path}.${p.field.replace(/\[(\d+)\]/g, '.$1')}`, message: p.message })
}

/** a task's templates: each parses, reads only named keys, and has a file of its own inside the task's directory */
function templateProblems(path: string, templates: TaskTemplate[], out: SpecProblem[]): void {
  const dests = new Map<string, number>()
  templates.forEach((tpl, i) => {
    const p = `${path}.${i}`
    try {
      compileTemplate(tpl.data, `${p}.data`)
    } catch (err) {
      out.push({ path: `${p}.data`, message: errorMessage(err) })
    }
    if (tpl.dest.split('/').some((seg) => seg === '.' || seg === '..'))
      out.push({ path: `${p}.dest`, message: 'stays inside the task directory: no "." or ".." segments' })
    const other = dests.get(tpl.dest)
    if (other !== undefined)
      out.push({ path: `${p}.dest`, message: `"${tpl.dest}" is also the file of ${path}.${other}` })
    else dests.set(tpl.dest, i)
    if (tpl.signal && tpl.changeMode !== 'signal')
      out.push({ path: `${p}.signal`, message: 'is sent only with changeMode "signal"' })
  })
}

/** Every problem of a parsed spec ([] = valid). */
export function jobProblems(value: unknown, ctx: SpecContext = {}): SpecProblem[] {
  if (validateShape(value)) return meaningProblems(value, ctx)
  return (validateShape.errors ?? []).map(shapeProblem)
}

export function invalidJob(problems: SpecProblem[], source = 'job'): PlexusError {
  const lines = problems.map(
    (p) => `  ${p.line ? `line ${p.line}: ` : ''}${p.path || '(spec)'}: ${p.message}`,
  )
  return new PlexusError(
    'PLX_JOB_INVALID',
    `${source} is invalid (${problems.length} problems):\n${lines.join('\n')}`,
    {
      status: 400,
      problems,
    },
  )
}

/** Validates a parsed spec; throws PLX_JOB_INVALID listing every problem. */
export function validateJob(value: unknown, ctx: SpecContext = {}): JobSpec {
  const problems = jobProblems(value, ctx)
  if (problems.length) throw invalidJob(problems)
  return value as JobSpec
}

/** The YAML node at a dotted path, as far down as it exists (for the line of a problem). */
function nodeAt(root: Node | null, path: string): Node | null {
  let node = root
  for (const part of path ? path.split('.') : []) {
    let next: unknown
    if (isMap(node)) next = node.get(part, true)
    else if (isSeq(node)) next = node.get(Number(part), true)
    if (!next || !(isMap(next) || isSeq(next) || isScalar(next))) break
    node = next as Node
  }
  return node
}

/**
 * Parses a job from YAML or JSON text (JSON is YAML) and validates it.
 * Throws PLX_JOB_INVALID with every problem, each with its line.
 */
export function parseJobText(text: string, source = 'job', ctx: SpecContext = {}): JobSpec {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length) {
    throw invalidJob(
      doc.errors.map((e) => ({
        path: '',
        message: e.message.split('\n')[0] ?? e.code,
        line: lines.linePos(e.pos[0]).line,
      })),
      source,
    )
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown
  const problems = jobProblems(value, ctx).map((p) => {
    const node = nodeAt(doc.contents, p.path)
    return node?.range ? { ...p, line: lines.linePos(node.range[0]).line } : p
  })
  if (problems.length) throw invalidJob(problems, source)
  return value as JobSpec
}
