// Published ports, the pure part: validate what a runtime or an operator asks
// for, find who already holds a host port, pick a free one for hostPort 0,
// and the rule provider the datapath calls on every pass: this host's
// endpoint records → the firewall section `ports` (applied atomically with
// the datapath's own rules) and the switches it needs. No I/O here: the
// service (publish-service.ts) reads the store, the host's sockets and
// addresses, and hands them in.

import { DEFAULT_ORDER, type Rule, type Section } from '../datapath/firewall/model.js'
import type { DesiredSwitch, Provided, ProviderInput } from '../datapath/model.js'
import { formatIPv4, parseIPv4 } from '../ipam/cidr.js'
import { PlexusError } from '../lib/errors.js'
import { endpointCodec } from '../store/codecs.js'
import type { EndpointValue, PublishedPort } from '../store/records.js'
import type { StoreRecord } from '../store/types.js'

export const PORTS_SECTION = 'ports'
export const PROTOCOLS = ['tcp', 'udp'] as const
export type Protocol = (typeof PROTOCOLS)[number]
/** Docker's default for hostPort 0 (the IANA dynamic range) */
/** The `ports` section of plexusd's config. */
export interface PortsConfig {
  /** where hostPort 0 picks a free port from, inclusive */
  range: [number, number]
}

export const DEFAULT_PORT_RANGE: [number, number] = [49152, 65535]
const LOOPBACK = '127.0.0.0/8'
/** ahead of the cluster section: the hairpin masquerade must precede its "no NAT inside the network" RETURN */
const PORTS_ORDER = DEFAULT_ORDER - 50

/** A request as it arrives (CNI portMappings, the API): not yet trusted. */
export interface PublishRequest {
  hostIp?: string
  hostPort: number
  containerPort: number
  protocol: string
}

/** Who holds a host port: another container's published port, or a host socket. */
export type Holder =
  | { kind: 'container'; name: string; containerId: string; key: string }
  | { kind: 'process' /** filled in by the service on the conflict path (ss) */; description?: string }

export interface HeldPort {
  /** absent: every address of the host */
  hostIp?: string
  hostPort: number
  protocol: Protocol
  holder: Holder
}

function isPort(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= 65535
}

export function describePort(p: { hostIp?: string; hostPort: number; protocol: string }): string {
  return `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}/${p.protocol}`
}

export function describeHolder(h: Holder): string {
  return h.kind === 'container'
    ? `container "${h.name}" (${h.containerId.slice(0, 12)})`
    : (h.description ?? 'a host process')
}

/** Both claim the same protocol and port on at least one common address. */
export function overlaps(
  a: { hostIp?: string; hostPort: number; protocol: string },
  b: { hostIp?: string; hostPort: number; protocol: string },
): boolean {
  return (
    a.protocol === b.protocol &&
    a.hostPort === b.hostPort &&
    (a.hostIp === undefined || b.hostIp === undefined || a.hostIp === b.hostIp)
  )
}

/**
 * Checks and normalizes requests: ports in range (hostPort 0 = pick one),
 * tcp|udp, hostIp an IPv4 address this host has (0.0.0.0 or "" = all), and
 * no two requests on the same host port. PLX_PORTS_INVALID lists every problem.
 */
export function validatePublish(reqs: PublishRequest[], localAddresses: Iterable<string>): PublishedPort[] {
  const local = new Set(localAddresses)
  const problems: string[] = []
  const out: PublishedPort[] = []
  reqs.forEach((r, i) => {
    const where = reqs.length > 1 ? `port mapping ${i + 1}: ` : ''
    const bad = (msg: string) => problems.push(`${where}${msg}`)
    if (!isPort(r.hostPort, 0)) bad(`host port ${String(r.hostPort)} is outside 1-65535 (0 picks a free one)`)
    if (!isPort(r.containerPort, 1)) bad(`container port ${String(r.containerPort)} is outside 1-65535`)
    const protocol = typeof r.protocol === 'string' ? r.protocol.toLowerCase() : r.protocol
    if (!(PROTOCOLS as readonly unknown[]).includes(protocol))
      bad(`protocol "${String(r.protocol)}" is not tcp or udp`)
    let hostIp: string | undefined
    if (r.hostIp !== undefined && r.hostIp !== '' && r.hostIp !== '0.0.0.0') {
      const n = typeof r.hostIp === 'string' ? parseIPv4(r.hostIp) : undefined
      if (n === undefined) bad(`host address "${String(r.hostIp)}" is not an IPv4 address`)
      else {
        hostIp = formatIPv4(n)
        if (!local.has(hostIp))
          bad(`host address ${hostIp} is not an address of this host (has ${[...local].sort().join(', ')})`)
      }
    }
    const p: PublishedPort = {
      hostPort: r.hostPort,
      containerPort: r.containerPort,
      protocol: protocol as Protocol,
      ...(hostIp ? { hostIp } : {}),
    }
    const twin = p.hostPort !== 0 ? out.find((q) => overlaps(p, q)) : undefined
    if (twin) bad(`host port ${describePort(p)} is asked for twice`)
    out.push(p)
  })
  if (problems.length)
    throw new PlexusError('PLX_PORTS_INVALID', `invalid port mapping: ${problems.join('; ')}`, {
      problems,
      status: 400,
    })
  return out
}

export type PlanResult =
  | { ok: PublishedPort[] }
  | { conflict: { port: PublishedPort; held: HeldPort } }
  | { exhausted: PublishedPort }

/**
 * Fixed host ports must be free of `held` (containers and host sockets);
 * hostPort 0 gets a free port of `range`, tried from a random start so two
 * hosts (or retries) do not all race for the same one.
 */
export function planPublish(
  ports: PublishedPort[],
  held: HeldPort[],
  range: [number, number],
  random: () => number = Math.random,
): PlanResult {
  for (const p of ports) {
    if (p.hostPort === 0) continue
    const h = held.find((x) => overlaps(p, x))
    if (h) return { conflict: { port: p, held: h } }
  }
  const taken = [...held, ...ports.filter((p) => p.hostPort !== 0)]
  const [lo, hi] = range
  const size = hi - lo + 1
  const out: PublishedPort[] = []
  for (const p of ports) {
    if (p.hostPort !== 0) {
      out.push(p)
      continue
    }
    const start = Math.floor(random() * size)
    let chosen: PublishedPort | undefined
    for (let i = 0; i < size && !chosen; i++) {
      const candidate = { ...p, hostPort: lo + ((start + i) % size) }
      if (!taken.some((x) => overlaps(candidate, x))) chosen = candidate
    }
    if (!chosen) return { exhausted: p }
    taken.push(chosen)
    out.push(chosen)
  }
  return { ok: out }
}

export function conflictError(port: PublishedPort, held: HeldPort): PlexusError {
  return new PlexusError(
    'PLX_PORTS_CONFLICT',
    `host port ${describePort(port)} is already taken by ${describeHolder(held.holder)}`,
    { status: 409, holder: held.holder },
  )
}

export function exhaustedError(port: PublishedPort, range: [number, number]): PlexusError {
  return new PlexusError(
    'PLX_PORTS_EXHAUSTED',
    `no free ${port.protocol} port in ${range[0]}-${range[1]}${port.hostIp ? ` on ${port.hostIp}` : ''}`,
    { status: 409 },
  )
}

/** The config's range for hostPort 0, checked. */
export function checkRange(range: unknown): [number, number] {
  const r = range as [unknown, unknown]
  if (!Array.isArray(r) || r.length !== 2 || !isPort(r[0], 1) || !isPort(r[1], 1) || r[0] > r[1])
    throw new PlexusError(
      'PLX_CONFIG_INVALID',
      `ports.range must be [lo, hi] with 1 <= lo <= hi <= 65535, got ${JSON.stringify(range)}`,
    )
  return [r[0], r[1]]
}

/** One endpoint record with its store key, as the service reads it. */
export interface EndpointEntry {
  key: string
  value: EndpointValue
}

/** The host ports published endpoints hold (all of them, or all but the one at `except`). */
export function heldByEndpoints(endpoints: EndpointEntry[], except?: string): HeldPort[] {
  return endpoints.flatMap((e) =>
    e.key === except
      ? []
      : (e.value.published ?? []).map((p) => ({
          hostPort: p.hostPort,
          protocol: p.protocol,
          ...(p.hostIp ? { hostIp: p.hostIp } : {}),
          holder: {
            kind: 'container' as const,
            name: e.value.name,
            containerId: e.value.containerId,
            key: e.key,
          },
        })),
  )
}

/** A published port bound to its container, ready to be rendered. */
export interface Mapping extends PublishedPort {
  key: string
  containerIp: string
}

/**
 * Every endpoint's published ports, oldest endpoint first; a later mapping
 * that overlaps an earlier one (records that came in from a restart or an
 * operator's edit, never through planPublish) is left out and reported.
 */
export function mappingsOf(endpoints: EndpointEntry[]): { mappings: Mapping[]; shadowed: Mapping[] } {
  const sorted = [...endpoints].sort(
    (a, b) => a.value.createdAt.localeCompare(b.value.createdAt) || a.key.localeCompare(b.key),
  )
  const mappings: Mapping[] = []
  const shadowed: Mapping[] = []
  for (const e of sorted) {
    for (const p of e.value.published ?? []) {
      if (!isPort(p.hostPort, 1) || !isPort(p.containerPort, 1) || !PROTOCOLS.includes(p.protocol)) continue
      const m: Mapping = { ...p, key: e.key, containerIp: e.value.ipv4 }
      if (mappings.some((x) => overlaps(x, m))) shadowed.push(m)
      else mappings.push(m)
    }
  }
  return { mappings, shadowed }
}

function ruleId(m: Mapping, what: string): string {
  return [m.protocol, m.hostPort, ...(m.hostIp ? [m.hostIp.replaceAll('.', '-')] : []), what].join('-')
}

function hairpinRuleId(m: Mapping): string {
  return `hairpin-${m.protocol}-${m.containerIp.replaceAll('.', '-')}-${m.containerPort}`
}

/**
 * The `ports` firewall section for this host:
 * - prerouting DNAT for traffic to a local address (other hosts via the
 *   underlay address; containers on this host, hairpin);
 * - output DNAT for the host's own connections, 127.0.0.1 included;
 * - masquerade only where the reply would otherwise miss the NAT: hairpin
 *   from this host's containers (the server would answer the client
 *   directly over the bridge) and the host's loopback sources (127/8 cannot
 *   leave on plexus0). Clients on other hosts keep their source address;
 * - route_localnet (a switch of publishedPortRules, on the bridge only) lets 127/8 go out
 *   on plexus0; the input guard keeps containers from opening connections
 *   to the host's loopback services through it (CVE-2020-8558), while
 *   replies of the DNATed localhost connections (established) pass.
 * hostIp narrows the match to that address instead of every local one.
 */
export function portsSection(input: { subnet: string; bridge: string; mappings: Mapping[] }): Section {
  const { subnet, bridge, mappings } = input
  const rules: Rule[] = []
  const hairpins = new Map<string, Rule>()
  for (const m of mappings) {
    const match = {
      ...(m.hostIp ? { dst: m.hostIp } : { dstLocal: true }),
      proto: m.protocol,
      dport: m.hostPort,
    }
    const dnat = { type: 'dnat' as const, to: m.containerIp, port: m.containerPort }
    rules.push(
      { id: ruleId(m, 'pre'), hook: 'prerouting', match, action: dnat },
      { id: ruleId(m, 'out'), hook: 'output', match, action: dnat },
    )
    // one per container port, however many host ports lead to it
    const id = hairpinRuleId(m)
    hairpins.set(id, {
      id,
      hook: 'postrouting',
      match: {
        src: subnet,
        dst: m.containerIp,
        oif: bridge,
        proto: m.protocol,
        dport: m.containerPort,
        // only what our DNAT sent here: with br_netfilter, direct container-to-container
        // traffic on the bridge passes postrouting too and must keep its source
        ctDnat: true,
      },
      action: { type: 'masquerade' },
    })
  }
  if (rules.length) {
    rules.push(
      ...hairpins.values(),
      {
        id: 'localhost',
        hook: 'postrouting',
        match: { src: LOOPBACK, oif: bridge },
        action: { type: 'masquerade' },
      },
      {
        id: 'loopback-guard',
        hook: 'input',
        match: { iif: bridge, dst: LOOPBACK, ctState: ['new', 'invalid'] },
        action: { type: 'drop' },
      },
    )
  }
  return { name: PORTS_SECTION, order: PORTS_ORDER, rules }
}

/** An endpoint record of this host's or another's, checked as gossip input (its key names its owner). */
export function endpointEntry(
  r: Pick<StoreRecord, 'key' | 'owner' | 'value'>,
): (EndpointEntry & { owner: string }) | undefined {
  const value = endpointCodec.valueOf(r)
  return value ? { key: r.key, owner: r.owner, value } : undefined
}

/**
 * The rule provider of published ports (datapath RuleProvider): the `ports`
 * section from the endpoint records, route_localnet on the bridge while
 * anything is published (off otherwise), and hairpin mode on the bridge
 * ports of the containers that publish; each rule and switch with the
 * record keys behind it.
 */
export function publishedPortRules(input: ProviderInput): Provided {
  const endpoints = input.endpoints.flatMap((r) => endpointEntry(r) ?? [])
  const { mappings } = mappingsOf(endpoints)
  const section = portsSection({ subnet: input.subnet, bridge: input.bridge, mappings })
  const keys = mappings.map((m) => m.key)
  const origins: Record<string, string[]> = {}
  const add = (id: string, key: string) => {
    const list = origins[id] ?? []
    if (!list.includes(key)) origins[id] = [...list, key]
  }
  for (const m of mappings) {
    for (const what of ['pre', 'out']) add(ruleId(m, what), m.key)
    add(hairpinRuleId(m), m.key)
  }
  // the section-wide rules stand for every publishing record
  for (const id of ['localhost', 'loopback-guard']) for (const k of keys) add(id, k)
  const switches: DesiredSwitch[] = [
    { kind: 'route-localnet', dev: input.bridge, on: mappings.length > 0 },
    ...hairpinVeths(endpoints, mappings).map((dev) => ({ kind: 'hairpin' as const, dev, on: true })),
  ]
  for (const k of keys) add(`route-localnet ${input.bridge}`, k)
  for (const e of endpoints) if (keys.includes(e.key)) add(`hairpin ${e.value.hostVeth}`, e.key)
  return { section, switches, origins }
}

/** Host-side veths that need hairpin mode: a container reaching its own published port gets its packets back on the port they came in on. */
export function hairpinVeths(endpoints: EndpointEntry[], mappings: Mapping[]): string[] {
  const keys = new Set(mappings.map((m) => m.key))
  return endpoints.filter((e) => keys.has(e.key)).map((e) => e.value.hostVeth)
}

/** One row of `plexctl ports` / `plexctl port ls`. */
export interface PortRow {
  host: string
  /** the address clients use: hostIp, else the host's underlay address */
  hostAddress: string
  hostPort: number
  protocol: Protocol
  container: string
  containerId: string
  containerIp: string
  containerPort: number
  local: boolean
}

/** Published ports of every endpoint in view; `addressOf(owner)` gives a host's underlay address. */
export function portRows(
  endpoints: (EndpointEntry & { owner: string })[],
  self: string,
  addressOf: (owner: string) => string | undefined,
): PortRow[] {
  return endpoints
    .flatMap((e) =>
      (e.value.published ?? []).map((p) => ({
        host: e.value.host,
        hostAddress: p.hostIp ?? addressOf(e.owner) ?? '0.0.0.0',
        hostPort: p.hostPort,
        protocol: p.protocol,
        container: e.value.name,
        containerId: e.value.containerId,
        containerIp: e.value.ipv4,
        containerPort: p.containerPort,
        local: e.owner === self,
      })),
    )
    .sort(
      (a, b) =>
        a.host.localeCompare(b.host) || a.hostPort - b.hostPort || a.protocol.localeCompare(b.protocol),
    )
}
