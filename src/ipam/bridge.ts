import { PlexusError } from '../lib/errors.js'
import type { BridgeBackend, BridgeNetworkValue, NetworkLinkValue, NetworkValue } from '../store/records.js'
import { LABEL_PATTERN } from '../store/schemas.js'
import { NETWORK_LINKS_PREFIX } from '../store/types.js'
import { formatCidr, parseCidr } from './cidr.js'
import { intIn, isObject, NETWORK_DEFAULTS, type NetworkConfig, parseNetworkConfig } from './config.js'
import { blockConfig, parseMacvlanNetwork } from './macvlan.js'

// Pure rules of a bridge network (issue 17 item 2): an overlay of its own
// beside the cluster network. Each host leases a subnet of its cidr by the
// cluster network's rules (the same LeaseManager over netleases/<peer>/<name>,
// as a macvlan network's blocks), and the datapath gives it a bridge and
// either a VXLAN device with the network's VNI or peers on the host's one
// WireGuard device. To the lease machinery a bridge network is a network
// config whose Network is the cidr, with a vxlan backend of its VNI or a
// wireguard one: the backend data the datapath publishes in each host's lease
// (VTEP MAC per VNI, or public key and endpoint) is the cluster backend's code's.

/** the cluster network's name where a named network's would go (links, DNS scoping) */
export const CLUSTER_NETWORK_NAME = 'plexus'

const FIELDS = ['name', 'driver', 'cidr', 'subnetLen', 'backend', 'vni', 'internal']
const BACKENDS: readonly BridgeBackend[] = ['vxlan', 'wireguard']

/** the name every problem of a network record is reported under (both drivers) */
function invalid(problems: string[]): never {
  throw new PlexusError('PLX_IPAM_NETWORK_INVALID', `invalid network: ${problems.join('; ')}`, { problems })
}

/**
 * Validates and normalizes a bridge network (operator input, or a record read
 * from the store). `vni` is required here: `createNamedNetwork` picks one
 * before it parses (`freeVni`). Every problem is collected; throws
 * PLX_IPAM_NETWORK_INVALID with `problems` in details.
 */
export function parseBridgeNetwork(input: unknown): BridgeNetworkValue {
  const problems: string[] = []
  if (!isObject(input)) return invalid(['must be a JSON object'])
  for (const k of Object.keys(input)) if (!FIELDS.includes(k)) problems.push(`${k} is not a known field`)
  const { name, driver, vni, internal } = input
  const backend = input.backend ?? 'vxlan'
  if (typeof name !== 'string' || !new RegExp(LABEL_PATTERN).test(name))
    problems.push(
      `name ${JSON.stringify(name)} must be a DNS label: lower-case letters, digits and '-', at most 63`,
    )
  else if (name === CLUSTER_NETWORK_NAME)
    problems.push(`name "${CLUSTER_NETWORK_NAME}" is the cluster network`)
  if (driver !== 'bridge') problems.push(`driver ${JSON.stringify(driver)} is not bridge`)
  const parsed = parseCidr(input.cidr)
  if ('reason' in parsed) problems.push(`cidr: ${parsed.reason}`)
  const cidr = 'cidr' in parsed ? parsed.cidr : undefined
  const subnetLen = input.subnetLen ?? (cidr ? Math.max(NETWORK_DEFAULTS.SubnetLen, cidr.prefix + 1) : 24)
  // a host subnet holds the gateway and at least one container (as the cluster network's SubnetLen)
  if (!intIn(subnetLen, 1, 28))
    problems.push(`subnetLen must be an integer from 1 to 28, got ${JSON.stringify(subnetLen)}`)
  else if (cidr && subnetLen <= cidr.prefix)
    problems.push(`subnetLen /${subnetLen} does not split cidr ${formatCidr(cidr)}: it must be longer`)
  if (!BACKENDS.includes(backend as BridgeBackend))
    problems.push(`backend ${JSON.stringify(backend)} is not one of ${BACKENDS.join(', ')}`)
  if (!intIn(vni, 1, 16777215))
    problems.push(`vni must be an integer from 1 to 16777215, got ${JSON.stringify(vni)}`)
  if (internal !== undefined && typeof internal !== 'boolean') problems.push('internal must be true or false')
  if (problems.length > 0 || !cidr) return invalid(problems)
  return {
    name: name as string,
    driver: 'bridge',
    cidr: formatCidr(cidr),
    subnetLen: subnetLen as number,
    backend: backend as BridgeBackend,
    vni: vni as number,
    internal: internal === true,
  }
}

/** a named network of either driver, by its `driver` field */
export function parseNamedNetwork(input: unknown): NetworkValue {
  if (isObject(input) && input.driver === 'bridge') return parseBridgeNetwork(input)
  if (isObject(input) && input.driver !== 'macvlan')
    return invalid([`driver ${JSON.stringify(input.driver)} is not supported (supported: bridge, macvlan)`])
  return parseMacvlanNetwork(input)
}

/**
 * The lease machinery's view of a bridge network: the cidr cut into host
 * subnets (flannel's SubnetMin default skips the first, as the cluster
 * network's), its backend (vxlan of the network's VNI, or wireguard),
 * masquerade unless internal. A wireguard network's Port is the default here:
 * the datapath sets the port of the host's one device (src/datapath *WireGuard*).
 */
export function subnetConfig(net: BridgeNetworkValue): NetworkConfig {
  return parseNetworkConfig({
    Network: net.cidr,
    SubnetLen: net.subnetLen,
    Backend: { Type: net.backend, VNI: net.vni },
    IPMasq: !net.internal,
  })
}

/** what a named network's host leases are cut from, whatever its driver */
export function leaseConfig(net: NetworkValue): NetworkConfig {
  return net.driver === 'bridge' ? subnetConfig(net) : blockConfig(net)
}

/** the addresses a named network hands out: its cidr (bridge) or range (macvlan) */
export function addressRange(net: NetworkValue): string {
  return net.driver === 'bridge' ? net.cidr : net.range
}

/** The lowest VNI above the cluster's that no other network uses. */
export function freeVni(clusterVni: number, taken: readonly number[]): number {
  let vni = clusterVni + 1
  while (taken.includes(vni)) vni++
  return vni
}

/** what `POST /v1/networks/:name/connect` takes */
export interface LinkInput {
  to?: unknown
  port?: unknown
  protocol?: unknown
}

export function networkLinkKey(from: string, to: string): string {
  return `${NETWORK_LINKS_PREFIX}${from}/${to}`
}

/**
 * `plexctl network connect FROM TO [--port P[/proto]]`: the link record after
 * this connect, merged into the one already stored (a second connect with
 * another port adds it; one without a port opens every port). Every problem
 * named; throws PLX_IPAM_NETWORK_INVALID.
 */
export function mergeLink(from: string, input: unknown, existing?: NetworkLinkValue): NetworkLinkValue {
  const problems: string[] = []
  if (!isObject(input)) return invalid(['must be a JSON object'])
  for (const k of Object.keys(input))
    if (!['to', 'port', 'protocol'].includes(k)) problems.push(`${k} is not a known field`)
  const { to, port, protocol } = input as LinkInput
  const label = new RegExp(LABEL_PATTERN)
  if (typeof to !== 'string' || !label.test(to))
    problems.push(`to ${JSON.stringify(to)} is not a network name`)
  else if (to === from) problems.push(`a network cannot be connected to itself (${from})`)
  if (port !== undefined && !intIn(port, 1, 65535))
    problems.push(`port must be an integer from 1 to 65535, got ${JSON.stringify(port)}`)
  if (protocol !== undefined && protocol !== 'tcp' && protocol !== 'udp')
    problems.push(`protocol must be tcp or udp, got ${JSON.stringify(protocol)}`)
  if (protocol !== undefined && port === undefined) problems.push('protocol is given without a port')
  if (problems.length) return invalid(problems)
  const base = { from, to: to as string }
  if (port === undefined) return { ...base, ports: [] }
  // every port already open stays so; a port added to an "every port" link changes nothing
  if (existing && existing.ports.length === 0) return { ...base, ports: [] }
  const spec = { port: port as number, protocol: (protocol ?? 'tcp') as 'tcp' | 'udp' }
  const ports = (existing?.ports ?? []).filter((p) => p.port !== spec.port || p.protocol !== spec.protocol)
  return {
    ...base,
    ports: [...ports, spec].sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1)),
  }
}
