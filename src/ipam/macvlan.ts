import { PlexusError } from '../lib/errors.js'
import { netLeaseCodec } from '../store/codecs.js'
import type { MacvlanNetworkValue } from '../store/records.js'
import { IFNAME_PATTERN, LABEL_PATTERN } from '../store/schemas.js'
import { NET_LEASE_PREFIX, NET_MEMBER_PREFIX, NETWORKS_PREFIX } from '../store/types.js'
import {
  type Cidr,
  containsAddress,
  containsCidr,
  formatCidr,
  formatIPv4,
  lastAddress,
  parseCidr,
  parseIPv4,
} from './cidr.js'
import { intIn, isObject, type NetworkConfig, parseNetworkConfig } from './config.js'
import { gatewayOf, type LeaseKeys } from './leases.js'

// Pure rules of a macvlan network (issue 17 item 3): what `plexctl network
// create --driver macvlan` may store, and how its range is split between
// hosts. Containers take addresses of the underlay subnet itself, so the part
// of it handed out (the range, Docker's --ip-range) is cut into blocks and
// each host leases one block by the very rules of the cluster network's host
// subnets (leases.ts, manager.ts): a macvlan network is, to the lease
// machinery, a network config whose Network is the range and whose SubnetLen
// is the block. That is what makes "no two hosts hand out one address" the
// same proven argument (README.md), with no DHCP.

/** what `POST /v1/networks` takes */
export interface NetworkInput {
  name?: unknown
  driver?: unknown
  parent?: unknown
  subnet?: unknown
  range?: unknown
  gateway?: unknown
  blockLen?: unknown
  mtu?: unknown
}

const FIELDS = ['name', 'driver', 'parent', 'subnet', 'range', 'gateway', 'blockLen', 'mtu']

/** a block of 64 addresses per host unless asked otherwise: room for 61 containers (README.md "macvlan networks") */
export const DEFAULT_BLOCK_LEN = 26

export function networkKey(name: string): string {
  return `${NETWORKS_PREFIX}${name}`
}

/**
 * The block leases of one named network: netleases/<peerId>/<network>, owned
 * by the host (only it can write its block). Listed under netleases/ with the
 * other networks' leases, which `of` leaves out.
 */
export function netLeaseKeys(network: string): LeaseKeys {
  const suffix = `/${network}`
  return {
    prefix: NET_LEASE_PREFIX,
    key: (peerId) => `${NET_LEASE_PREFIX}${peerId}${suffix}`,
    peerOf: (key) => {
      const peer = key.slice(NET_LEASE_PREFIX.length, key.length - suffix.length)
      return key.endsWith(suffix) && peer && !peer.includes('/') ? peer : undefined
    },
    of: (key) => key.startsWith(NET_LEASE_PREFIX) && key.endsWith(suffix),
    codec: netLeaseCodec,
  }
}

/** a container interface on a macvlan network, published by the host that attached it (owned) */
export function netMemberKey(
  peerId: string,
  m: { network: string; containerId: string; ifname: string },
): string {
  return `${NET_MEMBER_PREFIX}${peerId}/${m.network}/${m.containerId}/${m.ifname}`
}

/**
 * Validates and normalizes a macvlan network (operator input, or a record read
 * from the store: outside input either way). Every problem is collected;
 * nothing is returned unless all is valid. Throws PLX_IPAM_NETWORK_INVALID
 * with `problems` in details.
 */
export function parseMacvlanNetwork(input: unknown): MacvlanNetworkValue {
  const problems: string[] = []
  const fail = (): never => {
    throw new PlexusError('PLX_IPAM_NETWORK_INVALID', `invalid network: ${problems.join('; ')}`, { problems })
  }
  if (!isObject(input)) {
    problems.push('must be a JSON object')
    return fail()
  }
  for (const k of Object.keys(input)) if (!FIELDS.includes(k)) problems.push(`${k} is not a known field`)
  const { name, driver, parent, gateway } = input as NetworkInput
  if (typeof name !== 'string' || !new RegExp(LABEL_PATTERN).test(name))
    problems.push(
      `name ${JSON.stringify(name)} must be a DNS label: lower-case letters, digits and '-', at most 63`,
    )
  else if (name === 'plexus') problems.push('name "plexus" is the cluster network')
  if (driver !== 'macvlan')
    problems.push(`driver ${JSON.stringify(driver)} is not supported (supported: macvlan)`)
  if (parent !== undefined && (typeof parent !== 'string' || !new RegExp(IFNAME_PATTERN).test(parent)))
    problems.push(`parent ${JSON.stringify(parent)} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`)

  const cidr = (field: 'subnet' | 'range'): Cidr | undefined => {
    const r = parseCidr(input[field])
    if ('reason' in r) problems.push(`${field}: ${r.reason}`)
    return 'cidr' in r ? r.cidr : undefined
  }
  const subnet = cidr('subnet')
  const range = cidr('range')
  if (subnet && subnet.prefix > 30) problems.push(`subnet ${formatCidr(subnet)} is too small (at most /30)`)
  // The subnet's own network and broadcast addresses may lie in the range: every block's first and last
  // addresses are never handed out (addresses.ts reserves them as a host subnet's), so neither is.
  if (subnet && range && !containsCidr(subnet, range))
    problems.push(`range ${formatCidr(range)} is not inside subnet ${formatCidr(subnet)}`)

  // Docker's default gateway: the subnet's first address
  const gw = gateway === undefined ? (subnet ? subnet.base + 1 : undefined) : parseIPv4String(gateway)
  if (gateway !== undefined && gw === undefined)
    problems.push(`gateway ${JSON.stringify(gateway)} is not an IPv4 address`)
  if (gw !== undefined && subnet) {
    if (!containsAddress(subnet, gw) || gw === subnet.base || gw === lastAddress(subnet))
      problems.push(`gateway ${formatIPv4(gw)} is not a host address of subnet ${formatCidr(subnet)}`)
    else if (range && containsAddress(range, gw))
      problems.push(
        `gateway ${formatIPv4(gw)} is inside the range ${formatCidr(range)}, which is handed to containers`,
      )
  }

  const blockLen =
    input.blockLen ?? (range ? Math.max(DEFAULT_BLOCK_LEN, range.prefix + 1) : DEFAULT_BLOCK_LEN)
  // at least two blocks (the range is split between hosts) and a block holds the shim and a container
  if (!intIn(blockLen, 1, 30))
    problems.push(`blockLen must be an integer from 1 to 30, got ${JSON.stringify(blockLen)}`)
  else if (range && blockLen <= range.prefix)
    problems.push(
      `blockLen /${blockLen} does not split range ${formatCidr(range)}: it must be longer than /${range.prefix}`,
    )

  // absent: each host's parent interface's own MTU (the kernel's default for a macvlan)
  if (input.mtu !== undefined && !intIn(input.mtu, 576, 65535))
    problems.push(`mtu must be an integer from 576 to 65535, got ${JSON.stringify(input.mtu)}`)

  if (problems.length > 0 || !subnet || !range || gw === undefined) return fail()
  return {
    name: name as string,
    driver: 'macvlan',
    ...(parent !== undefined ? { parent: parent as string } : {}),
    subnet: formatCidr(subnet),
    range: formatCidr(range),
    gateway: formatIPv4(gw),
    blockLen: blockLen as number,
    ...(input.mtu !== undefined ? { mtu: input.mtu as number } : {}),
  }
}

function parseIPv4String(v: unknown): number | undefined {
  return typeof v === 'string' ? parseIPv4(v) : undefined
}

/**
 * The lease machinery's view of a macvlan network: the range is the network,
 * a block is a host's subnet, every block may be claimed (flannel's habit of
 * skipping the first subnet guards a .0.0 address a range never has). The
 * backend is host-gw because that is what it is to the lease and MTU rules: no
 * encapsulation, the underlay MTU; the lease itself says `macvlan`.
 */
export function blockConfig(net: MacvlanNetworkValue): NetworkConfig {
  const range = parseCidr(net.range)
  if ('reason' in range) throw new PlexusError('PLX_IPAM_NETWORK_INVALID', `range: ${range.reason}`)
  const step = 2 ** (32 - net.blockLen)
  return parseNetworkConfig({
    Network: net.range,
    SubnetLen: net.blockLen,
    SubnetMin: formatIPv4(range.cidr.base),
    SubnetMax: formatIPv4(lastAddress(range.cidr) - step + 1),
    Backend: { Type: 'host-gw' },
    IPMasq: false,
  })
}

/**
 * The host's own address on the network (its shim interface): the block's
 * first host address, which the address allocator keeps for itself as it
 * keeps a host subnet's for the bridge (leases.ts gatewayOf).
 */
export function shimAddress(block: Cidr): string {
  return formatIPv4(gatewayOf(block))
}
