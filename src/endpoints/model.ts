// Pure logic of container attachments: names, the CNI result, CHECK's
// comparison and the mapping from agent errors to CNI error codes. No I/O.
import { createHash } from 'node:crypto'
import type { Attachment, AttachRequest } from '../../cni/lib/agent-api.js'
import { CniCode } from '../../cni/lib/errors.js'
import type { CniDns } from '../../cni/lib/result.js'
import type { AttachmentObservation } from '../datapath/attach.js'
import {
  type AddressingProblem,
  describeProblems,
  readGateway,
  readRoutes,
  readStaticIp,
  type Subnet,
  subnetProblems,
} from '../lib/addressing.js'
import { isPlexusError, PlexusError } from '../lib/errors.js'
import { normalizeChecks } from '../store/checks.js'
import type { EndpointValue } from '../store/records.js'
import { ENDPOINT_PREFIX } from '../store/types.js'

/** label carrying the CNI network name, so GC of one network leaves the others alone */
export const NETWORK_LABEL = 'plexus.network'
export const DNS_SEARCH = ['svc.plexus.internal', 'plexus.internal']
export const DNS_OPTIONS = ['ndots:1']

export type { AttachRequest, DetachRequest } from '../../cni/lib/agent-api.js'
/** a container interface: what locks, journal entries and veth names are keyed by */
export type AttachmentKey = Attachment

/** The CNI result in its 1.1.0 shape; the plugin converts it for older runtimes. */
export interface CniResult {
  cniVersion: string
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[]
  ips: { address: string; gateway?: string; interface?: number }[]
  routes: { dst: string; gw?: string }[]
  dns: CniDns
}

export function endpointKey(peerId: string, k: AttachmentKey): string {
  return `${ENDPOINT_PREFIX}${peerId}/${k.containerId}/${k.ifname}`
}

/**
 * Host-side veth name, derived from the attachment so DEL finds it even when
 * the record and the container namespace are gone: "plx" + 12 hex digits of
 * sha256(containerId/ifname) (15 bytes, the kernel's limit).
 */
export function hostVethName(k: AttachmentKey): string {
  return `plx${createHash('sha256').update(`${k.containerId}/${k.ifname}`).digest('hex').slice(0, 12)}`
}

/** The name an endpoint gets when the runtime sent none: the short container id, as docker shows it. */
export function defaultName(containerId: string): string {
  return containerId.slice(0, 12)
}

/** A static request may carry a prefix length: it has to be the host subnet's. */
export function splitStaticIp(ip: string, prefixLength: number): string {
  const [addr, len] = ip.split('/')
  if (len !== undefined && Number(len) !== prefixLength) {
    throw new PlexusError(
      'PLX_ENDPOINTS_BAD_PREFIX',
      `requested address ${ip} has prefix length /${len}, the host subnet is /${prefixLength}`,
    )
  }
  return addr ?? ip
}

/**
 * The addressing an ADD asked for, checked again here (the API is reachable
 * without the plugin) and against the host subnet; every problem at once,
 * PLX_ENDPOINTS_BAD_ADDRESSING (CNI 7). `own`: the container's address once
 * allocated, which a gateway cannot be. Subnet rules apply to well-formed
 * values only, so they are looked at once the form is right.
 */
export function assertAddressing(
  req: Pick<AttachRequest, 'ip' | 'gateway' | 'routes'>,
  subnet: Subnet,
  own?: string,
): void {
  const problems: AddressingProblem[] = []
  if (req.ip !== undefined) readStaticIp('ip', req.ip, problems)
  if (req.gateway !== undefined) readGateway('gateway', req.gateway, problems)
  if (req.routes !== undefined) readRoutes('routes', req.routes, problems)
  if (!problems.length) problems.push(...subnetProblems(req, subnet, own))
  if (problems.length) {
    const lines = describeProblems(problems)
    throw new PlexusError('PLX_ENDPOINTS_BAD_ADDRESSING', `invalid addressing: ${lines.join('; ')}`, {
      problems: lines,
    })
  }
}

/** The extra routes with their next hop: a route without gw goes through the container's gateway (as the static IPAM plugin's). */
export function resolveRoutes(
  routes: AttachRequest['routes'],
  gateway: string,
): { dst: string; gw: string }[] | undefined {
  return routes?.length ? routes.map((r) => ({ dst: r.dst, gw: r.gw ?? gateway })) : undefined
}

export interface AttachmentFacts {
  containerId: string
  ifname: string
  netns: string
  address: string
  prefixLength: number
  /** the container's gateway: the bridge, or the address it asked for */
  gateway: string
  /** the bridge address, where the host's DNS answers */
  bridge: string
  /** extra routes, each with its next hop */
  routes?: { dst: string; gw: string }[]
  mtu: number
  mac: string
  hostVeth: string
  hostMac?: string
}

/** ADD's answer; a repeated ADD builds the same one from the stored record. */
export function buildResult(f: AttachmentFacts, dns: CniDns | undefined): CniResult {
  const host: CniResult['interfaces'][number] = { name: f.hostVeth, mtu: f.mtu }
  if (f.hostMac) host.mac = f.hostMac
  return {
    cniVersion: '1.1.0',
    interfaces: [host, { name: f.ifname, mac: f.mac, mtu: f.mtu, sandbox: f.netns }],
    ips: [{ address: `${f.address}/${f.prefixLength}`, gateway: f.gateway, interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: f.gateway }, ...(f.routes ?? [])],
    // The host's Plexus DNS answers on the bridge address; the search list makes a bare "web" resolve.
    dns: {
      nameservers: dns?.nameservers ?? [f.bridge],
      search: dns?.search ?? DNS_SEARCH,
      options: dns?.options ?? DNS_OPTIONS,
      ...(dns?.domain ? { domain: dns.domain } : {}),
    },
  }
}

export function buildEndpoint(
  req: AttachRequest,
  f: AttachmentFacts,
  host: string,
  now: Date,
): EndpointValue {
  const v: EndpointValue = {
    containerId: req.containerId,
    ifname: req.ifname,
    name: req.name ?? defaultName(req.containerId),
    host,
    ipv4: f.address,
    mac: f.mac,
    netns: req.netns,
    hostVeth: f.hostVeth,
    labels: { ...req.labels, [NETWORK_LABEL]: req.network },
    createdAt: now.toISOString(),
  }
  if (f.gateway !== f.bridge) v.gateway = f.gateway
  if (f.routes?.length) v.routes = f.routes
  if (req.namespace) v.namespace = req.namespace
  if (req.service) v.service = req.service
  if (req.tags?.length) v.tags = req.tags
  if (req.ports?.length) v.ports = req.ports
  // refused here (PLX_SERVICE_BAD_CHECK, the ADD rolls back) rather than written and never run
  const checks = normalizeChecks(req.checks, req.ports ?? [])
  if (checks.length) v.checks = checks
  if (req.published?.length) v.published = req.published
  if (req.namedNetwork) v.network = req.namedNetwork
  return v
}

/** What CHECK found in the kernel (undefined where something is missing). */
/** An attachment as the kernel has it, read by the datapath (src/datapath/attach.ts). */
export type Observed = AttachmentObservation

/** Compares the kernel with what ADD set up (and the runtime's cached result); one line per problem. */
export function checkProblems(
  expected: AttachmentFacts,
  observed: Observed,
  prevIps: string[] | undefined,
): string[] {
  const p: string[] = []
  const cidr = `${expected.address}/${expected.prefixLength}`
  if (prevIps && !prevIps.includes(cidr)) {
    p.push(`prevResult has ${prevIps.join(', ') || 'no address'}, the attachment has ${cidr}`)
  }
  const hv = observed.hostVeth
  if (!hv) p.push(`host interface ${expected.hostVeth} is missing`)
  else {
    if (!hv.up) p.push(`host interface ${expected.hostVeth} is down`)
    if (observed.bridgeIndex === undefined) p.push('bridge plexus0 is missing')
    else if (hv.master !== observed.bridgeIndex)
      p.push(`host interface ${expected.hostVeth} is not attached to plexus0`)
  }
  const c = observed.container
  if (!c) {
    p.push(`interface ${expected.ifname} is missing in ${expected.netns}`)
    return p
  }
  if (!c.up) p.push(`interface ${expected.ifname} is down`)
  if (c.mtu !== expected.mtu) p.push(`interface ${expected.ifname} has MTU ${c.mtu}, want ${expected.mtu}`)
  if (c.mac !== expected.mac) p.push(`interface ${expected.ifname} has MAC ${c.mac}, want ${expected.mac}`)
  if (!c.addresses.includes(cidr)) {
    p.push(`interface ${expected.ifname} lacks ${cidr} (has ${c.addresses.join(', ') || 'none'})`)
  }
  if (!c.defaultGateways.includes(expected.gateway) && !c.otherDefault) {
    p.push(`no default route via ${expected.gateway} on ${expected.ifname}`)
  }
  for (const r of expected.routes ?? []) {
    if (!c.routes.some((o) => o.dst === r.dst && o.gateway === r.gw))
      p.push(`no route to ${r.dst} via ${r.gw} on ${expected.ifname}`)
  }
  return p
}

/** CNI error codes: the plugin's table, so agent and plugin can never disagree. */
export const CNI = CniCode

const CODE_MAP: Record<string, number> = {
  PLX_ENDPOINTS_NO_LEASE: CNI.TRY_AGAIN_LATER,
  PLX_ENDPOINTS_FENCED: CNI.TRY_AGAIN_LATER,
  PLX_IPAM_NO_LEASE: CNI.TRY_AGAIN_LATER,
  PLX_ENDPOINTS_NOT_READY: CNI.TRY_AGAIN_LATER,
  PLX_DATAPATH_NOT_READY: CNI.TRY_AGAIN_LATER,
  PLX_NETNS_NOT_FOUND: CNI.UNKNOWN_CONTAINER,
  PLX_NETNS_INVALID: CNI.UNKNOWN_CONTAINER,
  PLX_IPAM_OUT_OF_RANGE: CNI.INVALID_CONFIG,
  PLX_IPAM_RESERVED: CNI.INVALID_CONFIG,
  PLX_IPAM_INVALID_ARGUMENT: CNI.INVALID_CONFIG,
  PLX_ENDPOINTS_BAD_PREFIX: CNI.INVALID_CONFIG,
  PLX_ENDPOINTS_IFNAME_TAKEN: CNI.INVALID_CONFIG,
  PLX_ENDPOINTS_CONFLICT: CNI.INVALID_CONFIG,
  PLX_ENDPOINTS_BAD_ADDRESSING: CNI.INVALID_CONFIG,
  // the config names a network the cluster does not have, or whose parent interface this host lacks
  PLX_ENDPOINTS_NO_NETWORK: CNI.INVALID_CONFIG,
  PLX_ATTACH_NO_PARENT: CNI.INVALID_CONFIG,
  // the container's namespace already routes a destination it asked for (its own, or another plugin's)
  PLX_ATTACH_ROUTE_TAKEN: CNI.INVALID_CONFIG,
  PLX_SERVICE_BAD_CHECK: CNI.INVALID_CONFIG,
  // the runtime handed us the host itself as the container's namespace
  PLX_NETNS_HOST: CNI.INVALID_ENV,
  PLX_ENDPOINTS_DNS_NOT_READY: CNI.TRY_AGAIN_LATER,
  // state dir read-only, full, failing: the spec's I/O failure, with the path in the message
  PLX_FS_WRITE: CNI.IO_FAILURE,
  PLX_IPAM_EXHAUSTED: CNI.NO_ADDRESS,
  PLX_IPAM_TAKEN: CNI.ADDRESS_IN_USE,
  PLX_ENDPOINTS_CHECK_FAILED: CNI.CHECK_FAILED,
  PLX_ENDPOINTS_UNKNOWN: CNI.UNKNOWN_CONTAINER,
  PLX_ENDPOINTS_UNAVAILABLE: CNI.NOT_AVAILABLE,
  PLX_ENDPOINTS_DEGRADED: CNI.NOT_AVAILABLE_DEGRADED,
  // published ports (src/ports): a bad mapping is the runtime's config; a taken port may free up
  PLX_PORTS_INVALID: CNI.INVALID_CONFIG,
  PLX_PORTS_CONFLICT: CNI.TRY_AGAIN_LATER,
  PLX_PORTS_EXHAUSTED: CNI.TRY_AGAIN_LATER,
}

/** The CNI error the plugin prints for an agent error, and the HTTP status it travels with. */
export function toCniError(err: unknown): {
  status: number
  code: string
  cni: { code: number; msg: string; details?: string }
} {
  if (isPlexusError(err)) {
    const cniCode = CODE_MAP[err.code] ?? CNI.INTERNAL
    const status =
      cniCode === CNI.TRY_AGAIN_LATER || (cniCode >= 50 && cniCode < 100)
        ? 503
        : cniCode === CNI.INTERNAL || cniCode === CNI.IO_FAILURE
          ? 500
          : 400
    const details = Array.isArray((err.details as { problems?: unknown })?.problems)
      ? (err.details as { problems: string[] }).problems.join('; ')
      : err.code
    return { status, code: err.code, cni: { code: cniCode, msg: err.message, details } }
  }
  const message = err instanceof Error ? err.message : String(err)
  return { status: 500, code: 'PLX_ENDPOINTS_INTERNAL', cni: { code: CNI.INTERNAL, msg: message } }
}
