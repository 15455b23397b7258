import {
  type AddressingProblem,
  describeProblems,
  parseIPv4,
  type RouteRequest,
  readGateway,
  readMac,
  readRoutes,
  readStaticIp,
} from '../../src/lib/addressing.js'
import type { Attachment, AttachRequest, PortMapping, PortSpec } from './agent-api.js'
import type { CniEnv } from './env.js'
import { CniCode, CniError } from './errors.js'
import { type CniDns, type CniResult, parseResult } from './result.js'
import { CURRENT_VERSION, negotiateVersion } from './version.js'

export const DEFAULT_SOCKET = '/run/plexus/plexusd.sock'

interface ArgsSection {
  name?: string
  service?: string
  tags?: string[]
  labels: Record<string, string>
  ports?: PortSpec[]
  checks?: NonNullable<AttachRequest['checks']>
  ips?: string[]
  mac?: string
  /** `args.plexus.gateway`: the container's default route goes through it instead of the bridge */
  gateway?: string
  /** `args.plexus.routes` */
  routes?: RouteRequest[]
}

/** The network configuration on stdin, validated and with defaults filled in. */
export interface NetConf {
  /** the version negotiated from cniVersion/cniVersions */
  cniVersion: string
  name: string
  socket: string
  /** a named (macvlan) Plexus network instead of the overlay */
  network?: string
  service?: string
  tags?: string[]
  labels: Record<string, string>
  ports?: PortSpec[]
  dns?: CniDns
  /** `args.cni` (CNI conventions) and `args.plexus`, merged; other args keys are ignored */
  args: ArgsSection
  runtime: {
    portMappings?: PortMapping[]
    dns?: CniDns
    ips?: string[]
    mac?: string
  }
  prevResult?: CniResult
  /** GC: cni.dev/valid-attachments (or the older cni.dev/attachments) */
  validAttachments?: Attachment[]
}

const KNOWN_FIELDS = new Set([
  'cniVersion',
  'cniVersions',
  'name',
  'type',
  'socket',
  'network',
  'service',
  'tags',
  'labels',
  'ports',
  'dns',
  'args',
  'runtimeConfig',
  'runtime_config',
  'prevResult',
  'capabilities',
  'ipam',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
])

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const ENDPOINT_NAME = /^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62})$/
/** service, tag and port names become DNS labels (as src/services requires) */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const LABEL_KEY = /^[a-zA-Z0-9]([a-zA-Z0-9_./-]{0,252})$/

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The object with each key that matches one of `names` case-insensitively
 * renamed to that spelling. Runtimes built on go-cni (containerd's CRI, and so
 * kubelet) marshal capability args from Go structs without JSON tags:
 * `{"HostPort":80,"ContainerPort":80,"Protocol":"tcp","HostIP":""}`,
 * `{"Servers":[…],"Searches":[…]}`. Go's own decoder matches field names
 * case-insensitively, so the reference plugins accept both; this is the one
 * place we do the same. Other keys are kept as they are.
 */
export function foldKeys(v: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const canonical = new Map(names.map((n) => [n.toLowerCase(), n]))
  const out: Record<string, unknown> = {}
  for (const [k, val] of Object.entries(v)) {
    const name = canonical.get(k.toLowerCase()) ?? k
    // the exact spelling wins over a folded one when a runtime sends both
    if (name === k || !(name in out)) out[name] = val
  }
  return out
}

/** runtimeConfig keys of the capabilities we declare (bandwidth and ipRanges pass through to chained plugins) */
const RUNTIME_KEYS = ['portMappings', 'dns', 'ips', 'mac', 'bandwidth', 'ipRanges'] as const
const PORT_MAPPING_KEYS = ['hostPort', 'containerPort', 'protocol', 'hostIP'] as const
const RUNTIME_DNS_KEYS = ['servers', 'searches', 'options'] as const
const CONFIG_DNS_KEYS = ['nameservers', 'domain', 'search', 'options'] as const

/** Thrown for a bad field; `code` tells config (7) from CNI_ARGS (4). */
function invalid(code: number, field: string, what: string): CniError {
  return new CniError(
    code,
    `${code === CniCode.INVALID_ENV ? 'CNI_ARGS' : 'network config'}: ${field} ${what}`,
  )
}

function str(code: number, field: string, v: unknown, re?: RegExp): string {
  if (typeof v !== 'string') throw invalid(code, field, 'must be a string')
  if (re && !re.test(v)) throw invalid(code, field, `"${v}" has invalid characters or length`)
  return v
}

function strList(code: number, field: string, v: unknown, re?: RegExp): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw invalid(code, field, 'must be an array of strings')
  if (re) for (const s of v) str(code, field, s, re)
  return v
}

function labelMap(code: number, field: string, v: unknown): Record<string, string> {
  // CNI conventions spell labels as [{key, value}]; a plain object is accepted too.
  const pairs: [unknown, unknown][] = Array.isArray(v)
    ? v.map((e, i) => {
        if (!isObject(e)) throw invalid(code, `${field}[${i}]`, 'must be an object with key and value')
        return [e.key, e.value]
      })
    : isObject(v)
      ? Object.entries(v)
      : (() => {
          throw invalid(code, field, 'must be an object or a list of {key, value}')
        })()
  const out: Record<string, string> = {}
  for (const [k, val] of pairs) {
    const key = str(code, `${field} key`, k, LABEL_KEY)
    out[key] = str(code, `${field}.${key}`, val)
  }
  return out
}

function protocol(code: number, field: string, v: unknown): 'tcp' | 'udp' {
  const p = typeof v === 'string' ? v.toLowerCase() : v
  if (p !== 'tcp' && p !== 'udp')
    throw invalid(code, field, `protocol ${JSON.stringify(v)} is not tcp or udp`)
  return p
}

function port(code: number, field: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 65535) {
    throw invalid(code, field, `${JSON.stringify(v)} is not a port number (${min}-65535)`)
  }
  return v
}

/** Exposed ports: "80/tcp", "53" (tcp) or {port, protocol, name}. */
export function parsePorts(code: number, field: string, v: unknown): PortSpec[] {
  const items = typeof v === 'string' ? v.split(',').filter(Boolean) : v
  if (!Array.isArray(items)) throw invalid(code, field, 'must be a list of ports like "80/tcp"')
  return items.map((p, i) => {
    const f = `${field}[${i}]`
    if (typeof p === 'string') {
      const m = /^(\d{1,5})(?:\/([a-zA-Z]+))?$/.exec(p.trim())
      if (!m) throw invalid(code, f, `"${p}" is not PORT[/PROTO]`)
      return { port: port(code, f, Number(m[1]), 1), protocol: protocol(code, f, m[2] ?? 'tcp') }
    }
    if (!isObject(p)) throw invalid(code, f, 'must be "PORT/PROTO" or {port, protocol}')
    const spec: PortSpec = {
      port: port(code, `${f}.port`, p.port, 1),
      protocol: protocol(code, f, p.protocol ?? 'tcp'),
    }
    if (p.name !== undefined) spec.name = str(code, `${f}.name`, p.name, DNS_LABEL)
    return spec
  })
}

function portMappings(v: unknown): PortMapping[] {
  const code = CniCode.INVALID_CONFIG
  if (!Array.isArray(v)) throw invalid(code, 'runtimeConfig.portMappings', 'must be an array')
  return v.map((raw, i) => {
    const f = `runtimeConfig.portMappings[${i}]`
    if (!isObject(raw)) throw invalid(code, f, 'must be an object')
    const m = foldKeys(raw, PORT_MAPPING_KEYS)
    const out: PortMapping = {
      hostPort: port(code, `${f}.hostPort`, m.hostPort ?? 0, 0),
      containerPort: port(code, `${f}.containerPort`, m.containerPort, 1),
      protocol: protocol(code, f, m.protocol ?? 'tcp'),
    }
    const hostIp = m.hostIP
    if (hostIp !== undefined && hostIp !== '') {
      const ip = str(code, `${f}.hostIP`, hostIp)
      if (parseIPv4(ip) === undefined) throw invalid(code, `${f}.hostIP`, `"${ip}" is not an IPv4 address`)
      out.hostIp = ip
    }
    return out
  })
}

/**
 * Addressing fields (static address, MAC, gateway, routes) do not stop at the
 * first problem: each pushes its problems here and the caller refuses once,
 * naming all of them (addressingError).
 */
type Problems = AddressingProblem[]

function staticIps(field: string, v: unknown, out: Problems): string[] | undefined {
  if (!Array.isArray(v)) {
    out.push({ field, message: 'must be an array of strings' })
    return undefined
  }
  const before = out.length
  for (const ip of v) readStaticIp(field, ip, out)
  if (v.length > 1)
    out.push({ field, message: 'asks for more than one address; Plexus gives each interface one' })
  return out.length === before ? v : undefined
}

/** One refusal naming every addressing problem; `code` tells config (7) from CNI_ARGS (4). */
function addressingError(code: number, problems: Problems): CniError {
  const where = code === CniCode.INVALID_ENV ? 'CNI_ARGS' : 'network config'
  const lines = describeProblems(problems)
  return new CniError(code, `${where}: ${lines.join('; ')}`, lines.join('\n'))
}

function dnsSection(field: string, raw: unknown, runtimeSpelling: boolean): CniDns {
  const code = CniCode.INVALID_CONFIG
  if (!isObject(raw)) throw invalid(code, field, 'must be an object')
  const v = foldKeys(raw, runtimeSpelling ? RUNTIME_DNS_KEYS : CONFIG_DNS_KEYS)
  // runtimeConfig.dns spells its fields servers/searches (CONVENTIONS.md), the network config nameservers/search.
  const [ns, search] = runtimeSpelling ? ['servers', 'searches'] : ['nameservers', 'search']
  const out: CniDns = {}
  if (v[ns] !== undefined) {
    out.nameservers = strList(code, `${field}.${ns}`, v[ns])
    for (const s of out.nameservers) {
      if (parseIPv4(s) === undefined && !s.includes(':'))
        throw invalid(code, `${field}.${ns}`, `"${s}" is not an IP address`)
    }
  }
  if (v[search] !== undefined) out.search = strList(code, `${field}.${search}`, v[search])
  if (v.options !== undefined) out.options = strList(code, `${field}.options`, v.options)
  if (!runtimeSpelling && v.domain !== undefined) out.domain = str(code, `${field}.domain`, v.domain)
  return out
}

function argsSection(v: unknown, problems: Problems): ArgsSection {
  const code = CniCode.INVALID_CONFIG
  const out: ArgsSection = { labels: {} }
  if (v === undefined) return out
  if (!isObject(v)) throw invalid(code, 'args', 'must be an object')
  const cni = v.cni
  if (cni !== undefined) {
    if (!isObject(cni)) throw invalid(code, 'args.cni', 'must be an object')
    if (cni.labels !== undefined) Object.assign(out.labels, labelMap(code, 'args.cni.labels', cni.labels))
    const ips = cni.ips === undefined ? undefined : staticIps('args.cni.ips', cni.ips, problems)
    if (ips) out.ips = ips
    const m = cni.mac === undefined ? undefined : readMac('args.cni.mac', cni.mac, problems)
    if (m) out.mac = m
  }
  const px = v.plexus
  if (px !== undefined) {
    if (!isObject(px)) throw invalid(code, 'args.plexus', 'must be an object')
    if (px.name !== undefined) out.name = str(code, 'args.plexus.name', px.name, ENDPOINT_NAME)
    if (px.service !== undefined) out.service = str(code, 'args.plexus.service', px.service, DNS_LABEL)
    if (px.tags !== undefined) out.tags = strList(code, 'args.plexus.tags', px.tags, DNS_LABEL)
    if (px.labels !== undefined) Object.assign(out.labels, labelMap(code, 'args.plexus.labels', px.labels))
    if (px.ports !== undefined) out.ports = parsePorts(code, 'args.plexus.ports', px.ports)
    if (px.checks !== undefined) out.checks = checkList(code, px.checks)
    const gateway =
      px.gateway === undefined ? undefined : readGateway('args.plexus.gateway', px.gateway, problems)
    if (gateway) out.gateway = gateway
    const routes = px.routes === undefined ? undefined : readRoutes('args.plexus.routes', px.routes, problems)
    if (routes) out.routes = routes
  }
  return out
}

/**
 * `args.plexus.checks`: their fields are checked by the agent against the API's
 * schema and the services module's rules (src/services/model.ts), so the plugin
 * carries no schema code; here only the shape that lets it pass them on.
 */
function checkList(code: number, v: unknown): NonNullable<ArgsSection['checks']> {
  if (!Array.isArray(v) || v.length > 16 || !v.every(isObject))
    throw invalid(code, 'args.plexus.checks', 'must be an array of at most 16 check objects')
  return v as NonNullable<ArgsSection['checks']>
}

function attachments(v: unknown, field: string): Attachment[] {
  const code = CniCode.INVALID_CONFIG
  if (!Array.isArray(v)) throw invalid(code, field, 'must be an array')
  return v.map((a, i) => {
    if (!isObject(a)) throw invalid(code, `${field}[${i}]`, 'must be an object')
    return {
      containerId: str(code, `${field}[${i}].containerID`, a.containerID),
      ifname: str(code, `${field}[${i}].ifname`, a.ifname),
    }
  })
}

/** Decodes stdin: empty or malformed input is a decode error (6), bad fields are invalid config (7). */
export function decodeStdin(text: string): Record<string, unknown> {
  if (text.trim() === '') throw new CniError(CniCode.DECODE, 'no network configuration on stdin')
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new CniError(
      CniCode.DECODE,
      'network configuration on stdin is not valid JSON',
      (err as Error).message,
    )
  }
  if (!isObject(raw))
    throw new CniError(CniCode.DECODE, 'network configuration on stdin must be a JSON object')
  return raw
}

/** Validates the decoded network configuration and fills in defaults. */
export function parseNetConf(raw: Record<string, unknown>): NetConf {
  const code = CniCode.INVALID_CONFIG
  const cniVersion = negotiateVersion(raw.cniVersion, raw.cniVersions)
  for (const k of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(k)) {
      throw new CniError(
        CniCode.UNSUPPORTED_FIELD,
        `unsupported field "${k}" in network config (value ${JSON.stringify(raw[k])})`,
      )
    }
  }
  if (raw.type !== 'plexus')
    throw invalid(code, 'field "type"', `must be "plexus", got ${JSON.stringify(raw.type)}`)
  if (raw.ipam !== undefined && !(isObject(raw.ipam) && Object.keys(raw.ipam).length === 0)) {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      `unsupported field "ipam" (value ${JSON.stringify(raw.ipam)}): plexus allocates addresses itself`,
    )
  }
  if (raw.name === undefined) throw invalid(code, 'field "name"', 'is required')
  const problems: Problems = []
  const conf: NetConf = {
    cniVersion,
    name: str(code, 'field "name"', raw.name, NETWORK_NAME),
    socket: DEFAULT_SOCKET,
    labels: {},
    args: argsSection(raw.args, problems),
    runtime: {},
  }
  if (raw.socket !== undefined) {
    conf.socket = str(code, 'field "socket"', raw.socket)
    if (!conf.socket.startsWith('/')) throw invalid(code, 'field "socket"', 'must be an absolute path')
  }
  if (raw.network !== undefined) conf.network = str(code, 'field "network"', raw.network, DNS_LABEL)
  if (raw.service !== undefined) conf.service = str(code, 'field "service"', raw.service, DNS_LABEL)
  if (raw.tags !== undefined) conf.tags = strList(code, 'field "tags"', raw.tags, DNS_LABEL)
  if (raw.labels !== undefined) conf.labels = labelMap(code, 'field "labels"', raw.labels)
  if (raw.ports !== undefined) conf.ports = parsePorts(code, 'field "ports"', raw.ports)
  if (raw.dns !== undefined) conf.dns = dnsSection('dns', raw.dns, false)

  // libcni spells it runtimeConfig; some older runtimes sent runtime_config.
  const rcRaw = raw.runtimeConfig ?? raw.runtime_config
  if (rcRaw !== undefined) {
    if (!isObject(rcRaw)) throw invalid(code, 'runtimeConfig', 'must be an object')
    const rc = foldKeys(rcRaw, RUNTIME_KEYS)
    // Keys for capabilities we do not declare are ignored, as the conventions ask.
    if (rc.portMappings !== undefined) conf.runtime.portMappings = portMappings(rc.portMappings)
    if (rc.dns !== undefined) conf.runtime.dns = dnsSection('runtimeConfig.dns', rc.dns, true)
    const ips = rc.ips === undefined ? undefined : staticIps('runtimeConfig.ips', rc.ips, problems)
    if (ips) conf.runtime.ips = ips
    const m = rc.mac === undefined ? undefined : readMac('runtimeConfig.mac', rc.mac, problems)
    if (m) conf.runtime.mac = m
  }
  if (problems.length) throw addressingError(code, problems)
  if (raw.prevResult !== undefined) conf.prevResult = parseResult(raw.prevResult, cniVersion)
  const att = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments']
  if (att !== undefined) conf.validAttachments = attachments(att, 'cni.dev/valid-attachments')
  return conf
}

/** What DEL and GC need: which agent to call and, for GC, the attachments to keep. */
export interface TeardownConf {
  cniVersion: string
  name: string
  socket: string
  /** GC: undefined when the field is absent; null when it was malformed (then GC releases nothing) */
  validAttachments?: Attachment[] | null
  /** what was malformed and ignored, for the log */
  skipped: string[]
}

const errMsg = (err: unknown) => (err instanceof CniError ? err.msg : String(err))

/**
 * DEL and GC never fail because of the config: the spec asks DEL to release
 * what it can, and a runtime whose DEL fails can never remove the sandbox
 * (containerd retries it forever). The attachment is known from CNI_CONTAINERID
 * and CNI_IFNAME alone; only the socket comes from the config, and a malformed
 * one falls back to the default. Whatever is ignored is listed in `skipped`.
 */
export function parseTeardownConf(stdin: string): TeardownConf {
  const skipped: string[] = []
  let raw: Record<string, unknown> = {}
  try {
    raw = decodeStdin(stdin)
  } catch (err) {
    skipped.push(errMsg(err))
  }
  try {
    const conf = parseNetConf(raw)
    return { ...conf, skipped }
  } catch (err) {
    if (Object.keys(raw).length) skipped.push(errMsg(err))
  }
  const pick = <T>(what: string, fn: () => T, fallback: T): T => {
    try {
      return fn()
    } catch (err) {
      skipped.push(`${what}: ${errMsg(err)}`)
      return fallback
    }
  }
  const conf: TeardownConf = {
    cniVersion: pick('cniVersion', () => negotiateVersion(raw.cniVersion, raw.cniVersions), CURRENT_VERSION),
    name: typeof raw.name === 'string' && NETWORK_NAME.test(raw.name) ? raw.name : '',
    socket: typeof raw.socket === 'string' && raw.socket.startsWith('/') ? raw.socket : DEFAULT_SOCKET,
    skipped,
  }
  const att = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments']
  if (att !== undefined)
    conf.validAttachments = pick(
      'valid attachments',
      () => attachments(att, 'cni.dev/valid-attachments'),
      null,
    )
  return conf
}

/** What ADD asks the agent for: one container interface, everything resolved. */
// CNI_ARGS keys this plugin reads. Anything else is refused unless
// IgnoreUnknown is set (as the reference plugins' LoadArgs does).
const ARG_KEYS = new Set([
  'IgnoreUnknown',
  'K8S_POD_NAME',
  'K8S_POD_NAMESPACE',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
  'IP',
  'MAC',
  'GATEWAY',
  'PLEXUS_NAME',
  'PLEXUS_SERVICE',
  'PLEXUS_TAGS',
  'PLEXUS_LABEL',
  'PLEXUS_EXPOSE',
  'PLEXUS_NETWORK',
])

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'true', 'TRUE', 'True'].includes(v)
}

/**
 * Resolves one attachment from the config, its runtimeConfig and CNI_ARGS.
 * Per container beats per network: runtimeConfig > CNI_ARGS > args > config.
 */
export function buildAttachRequest(conf: NetConf, env: CniEnv): AttachRequest {
  const a = env.args
  const e = CniCode.INVALID_ENV
  if (!truthy(a.IgnoreUnknown)) {
    const unknown = Object.keys(a).filter((k) => !ARG_KEYS.has(k))
    if (unknown.length) {
      throw new CniError(
        e,
        `CNI_ARGS: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (set IgnoreUnknown=1 to ignore)`,
      )
    }
  }
  const req: AttachRequest = {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    network: conf.name,
    labels: { ...conf.labels, ...conf.args.labels },
  }
  const named = a.PLEXUS_NETWORK ?? conf.network
  if (named) req.namedNetwork = a.PLEXUS_NETWORK ? str(e, 'PLEXUS_NETWORK', named, DNS_LABEL) : named
  const name = a.PLEXUS_NAME ?? a.K8S_POD_NAME
  if (name) req.name = str(e, a.PLEXUS_NAME ? 'PLEXUS_NAME' : 'K8S_POD_NAME', name, ENDPOINT_NAME)
  else if (conf.args.name) req.name = conf.args.name
  if (a.K8S_POD_NAMESPACE) req.namespace = str(e, 'K8S_POD_NAMESPACE', a.K8S_POD_NAMESPACE, ENDPOINT_NAME)

  const service = a.PLEXUS_SERVICE || conf.args.service || conf.service
  if (service) req.service = a.PLEXUS_SERVICE ? str(e, 'PLEXUS_SERVICE', service, DNS_LABEL) : service
  const tags =
    a.PLEXUS_TAGS !== undefined
      ? strList(e, 'PLEXUS_TAGS', a.PLEXUS_TAGS.split(',').filter(Boolean), DNS_LABEL)
      : (conf.args.tags ?? conf.tags)
  if (tags?.length) req.tags = tags
  if (a.PLEXUS_LABEL) {
    for (const pair of a.PLEXUS_LABEL.split(',')) {
      const i = pair.indexOf('=')
      if (i <= 0) throw invalid(e, 'PLEXUS_LABEL', `"${pair}" is not key=value`)
      req.labels[str(e, 'PLEXUS_LABEL key', pair.slice(0, i), LABEL_KEY)] = pair.slice(i + 1)
    }
  }
  const ports =
    a.PLEXUS_EXPOSE !== undefined
      ? parsePorts(e, 'PLEXUS_EXPOSE', a.PLEXUS_EXPOSE)
      : (conf.args.ports ?? conf.ports)
  if (ports?.length) req.ports = ports
  if (conf.args.checks?.length) req.checks = conf.args.checks
  if (conf.runtime.portMappings?.length) req.published = conf.runtime.portMappings

  // CNI_ARGS' addressing keys (IP and GATEWAY as the reference static IPAM plugin spells them)
  const problems: Problems = []
  if (a.IP !== undefined) staticIps('IP', [a.IP], problems)
  const argMac = a.MAC !== undefined ? readMac('MAC', a.MAC, problems) : undefined
  const argGateway = a.GATEWAY !== undefined ? readGateway('GATEWAY', a.GATEWAY, problems) : undefined
  if (problems.length) throw addressingError(e, problems)
  const ip = conf.runtime.ips?.[0] ?? a.IP ?? conf.args.ips?.[0]
  if (ip) req.ip = ip
  const m = conf.runtime.mac ?? argMac ?? conf.args.mac
  if (m) req.mac = m
  const gateway = argGateway ?? conf.args.gateway
  if (gateway) req.gateway = gateway
  if (conf.args.routes?.length) req.routes = conf.args.routes

  const dns = { ...conf.dns, ...conf.runtime.dns }
  if (Object.keys(dns).length) req.dns = dns
  return req
}
