import { PlexusError } from '../lib/errors.js'
import {
  BACKEND_TYPES,
  NetworkConfig,
  NetworkConfigInput as NetworkConfigInputSchema,
} from '../store/schemas.js'
import { type Cidr, formatCidr, formatIPv4, lastAddress, parseCidr, parseIPv4 } from './cidr.js'

// The cluster network config (store key `config/network`), in flannel's
// net-conf.json field names so existing flannel configs paste in unchanged.

export const NETWORK_CONFIG_KEY = 'config/network'
export { BACKEND_TYPES, NetworkConfig }
export type BackendType = (typeof BACKEND_TYPES)[number]

/** VXLAN encapsulation: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50
/** WireGuard over IPv4: outer IPv4 (20) + UDP (8) + WireGuard header (16) + authentication tag (16). */
export const WIREGUARD_OVERHEAD = 60
/** WireGuard's customary port (flannel's default for its wireguard backend too). */
export const WIREGUARD_PORT = 51820

/** a backend's UDP port when the config names none: WireGuard's, else VXLAN's (flannel's defaults) */
export function defaultPort(type: unknown): number {
  return type === 'wireguard' ? WIREGUARD_PORT : NETWORK_DEFAULTS.Backend.Port
}

/** What a user may write: any field may be left out. */
export type NetworkConfigInput = Partial<Omit<NetworkConfig, 'Backend'>> & {
  Backend?: Partial<NetworkConfig['Backend']>
}

/** The `network` section of plexusd's config: seeding and this host's lease timing. */
export interface LeaseConfig {
  /** flannel net-conf fields written to config/network when the cluster has none; false: wait for `plexctl network init` */
  seed: NetworkConfigInput | false
  /** host-subnet lease lifetime (24 h, as flannel); a dead host's subnet is free this long after its last renewal */
  leaseTtlMs: number
  /** how long a new claim waits for competing claims to surface before the lease counts */
  leaseSettleMs: number
  /** renewal period (default: a third of the lease, at most 60 s) */
  leaseRenewMs?: number
  /** bound on the clock difference between hosts the lease rules assume (src/ipam/README.md) */
  leaseClockDriftMs: number
}

export const NETWORK_DEFAULTS = {
  Network: '10.244.0.0/16',
  SubnetLen: 24,
  Backend: { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: false },
  IPMasq: true,
} as const

/** JSON schema of the input shape (types only; `parseNetworkConfig` checks meaning). Shared by the API and the agent config. */
export const networkConfigSchema = NetworkConfigInputSchema

/** Parsed ranges the lease logic works on. */
export interface NetworkRanges {
  network: Cidr
  subnetLen: number
  /** base address of the first and last subnet hosts may claim */
  min: number
  max: number
}

const TOP_FIELDS = ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend', 'IPMasq']
const BACKEND_FIELDS = ['Type', 'VNI', 'Port', 'MTU', 'DirectRouting']

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function unknownFields(
  obj: Record<string, unknown>,
  known: string[],
  prefix: string,
  problems: string[],
): void {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue
    // flannel is read by Go's case-insensitive JSON decoder; we are strict, but say what was meant.
    const meant = known.find((f) => f.toLowerCase() === k.toLowerCase())
    problems.push(`${prefix}${k} is not a known field${meant ? ` (did you mean "${meant}"?)` : ''}`)
  }
}

export function intIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi
}

/**
 * Validates and normalizes a network config (user input, the agent config's
 * seed, or a value read from the store). All problems are reported at once;
 * nothing is returned unless everything is valid, so a bad config is never
 * half-applied. Throws PLX_IPAM_CONFIG_INVALID.
 */
export function parseNetworkConfig(input: unknown): NetworkConfig {
  const problems: string[] = []
  const fail = (): never => {
    throw new PlexusError('PLX_IPAM_CONFIG_INVALID', `invalid network config: ${problems.join('; ')}`, {
      problems,
    })
  }
  if (!isObject(input)) {
    problems.push('must be a JSON object')
    return fail()
  }
  unknownFields(input, TOP_FIELDS, '', problems)
  const backendIn = input.Backend ?? {}
  if (!isObject(backendIn)) problems.push('Backend must be an object')
  const b = isObject(backendIn) ? backendIn : {}
  if (isObject(backendIn)) unknownFields(b, BACKEND_FIELDS, 'Backend.', problems)

  const type = b.Type ?? NETWORK_DEFAULTS.Backend.Type
  if (!BACKEND_TYPES.includes(type as BackendType)) {
    problems.push(
      `Backend.Type: unknown backend type ${JSON.stringify(type)} (supported: ${BACKEND_TYPES.join(', ')})`,
    )
  }
  const vni = b.VNI ?? NETWORK_DEFAULTS.Backend.VNI
  if (!intIn(vni, 1, 16777215))
    problems.push(`Backend.VNI must be an integer from 1 to 16777215, got ${JSON.stringify(vni)}`)
  const port = b.Port ?? defaultPort(type)
  if (!intIn(port, 1, 65535))
    problems.push(`Backend.Port must be an integer from 1 to 65535, got ${JSON.stringify(port)}`)
  // 576 is the smallest datagram every IPv4 host must accept (RFC 791).
  if (b.MTU !== undefined && !intIn(b.MTU, 576, 65535)) {
    problems.push(`Backend.MTU must be an integer from 576 to 65535, got ${JSON.stringify(b.MTU)}`)
  }
  const direct = b.DirectRouting ?? NETWORK_DEFAULTS.Backend.DirectRouting
  if (typeof direct !== 'boolean') problems.push('Backend.DirectRouting must be true or false')
  if (direct === true && type !== 'vxlan')
    problems.push(`Backend.DirectRouting applies to vxlan only (not ${String(type)})`)
  const ipMasq = input.IPMasq ?? NETWORK_DEFAULTS.IPMasq
  if (typeof ipMasq !== 'boolean') problems.push('IPMasq must be true or false')

  const ranges = parseRanges(input, problems)
  if (problems.length > 0 || !ranges) return fail()
  const backend: NetworkConfig['Backend'] = {
    Type: type as BackendType,
    VNI: vni as number,
    Port: port as number,
    DirectRouting: direct as boolean,
  }
  if (b.MTU !== undefined) backend.MTU = b.MTU as number
  return {
    Network: formatCidr(ranges.network),
    SubnetLen: ranges.subnetLen,
    SubnetMin: formatIPv4(ranges.min),
    SubnetMax: formatIPv4(ranges.max),
    Backend: backend,
    IPMasq: ipMasq as boolean,
  }
}

function parseRanges(input: Record<string, unknown>, problems: string[]): NetworkRanges | undefined {
  const net = parseCidr(input.Network ?? NETWORK_DEFAULTS.Network)
  if ('reason' in net) {
    problems.push(`Network: ${net.reason}`)
    return undefined
  }
  const network = net.cidr
  const subnetLen = input.SubnetLen ?? NETWORK_DEFAULTS.SubnetLen
  // /30 is the smallest subnet with a gateway, a broadcast and one container address.
  if (!intIn(subnetLen, 1, 30)) {
    problems.push(`SubnetLen must be an integer from 1 to 30, got ${JSON.stringify(subnetLen)}`)
    return undefined
  }
  if (subnetLen <= network.prefix) {
    problems.push(
      `SubnetLen /${subnetLen} does not fit in Network ${formatCidr(network)}: it must be longer than /${network.prefix}`,
    )
    return undefined
  }
  const step = 2 ** (32 - subnetLen)
  const lastSubnet = lastAddress(network) - step + 1
  // Like flannel, skip the network's first subnet by default (its .0.0 address confuses people and tools).
  const defaultMin = subnetLen > network.prefix + 1 ? network.base + step : network.base
  const bound = (field: 'SubnetMin' | 'SubnetMax', fallback: number): number | undefined => {
    const v = input[field]
    if (v === undefined) return fallback
    const ip = typeof v === 'string' ? parseIPv4(v) : undefined
    if (ip === undefined) problems.push(`${field}: ${JSON.stringify(v)} is not an IPv4 address`)
    else if (ip < network.base || ip > lastAddress(network))
      problems.push(`${field} ${v} is outside Network ${formatCidr(network)}`)
    else if ((ip - network.base) % step !== 0)
      problems.push(`${field} ${v} is not on a /${subnetLen} boundary`)
    else return ip
    return undefined
  }
  const min = bound('SubnetMin', defaultMin)
  const max = bound('SubnetMax', lastSubnet)
  if (min === undefined || max === undefined) return undefined
  if (min > max) {
    problems.push(
      `SubnetMin ${formatIPv4(min)} is above SubnetMax ${formatIPv4(max)}: the range holds no subnet`,
    )
    return undefined
  }
  return { network, subnetLen, min, max }
}

/** Ranges of a config that came out of parseNetworkConfig. */
export function networkRanges(cfg: NetworkConfig): NetworkRanges {
  const problems: string[] = []
  const r = parseRanges(cfg as unknown as Record<string, unknown>, problems)
  if (!r)
    throw new PlexusError('PLX_IPAM_CONFIG_INVALID', `invalid network config: ${problems.join('; ')}`, {
      problems,
    })
  return r
}

/** How many host subnets the config offers. */
export function subnetCount(r: NetworkRanges): number {
  return (r.max - r.min) / 2 ** (32 - r.subnetLen) + 1
}

/** The overlay MTU on a host whose underlay interface has `underlayMtu`. */
export function overlayMtu(cfg: NetworkConfig, underlayMtu: number): number {
  if (cfg.Backend.MTU !== undefined) return cfg.Backend.MTU
  if (cfg.Backend.Type === 'vxlan') return underlayMtu - VXLAN_OVERHEAD
  return cfg.Backend.Type === 'wireguard' ? underlayMtu - WIREGUARD_OVERHEAD : underlayMtu
}

/** Structural equality of two normalized configs (key order does not matter). */
export function sameNetworkConfig(a: NetworkConfig, b: NetworkConfig): boolean {
  const canon = (c: NetworkConfig) =>
    JSON.stringify([
      c.Network,
      c.SubnetLen,
      c.SubnetMin,
      c.SubnetMax,
      c.IPMasq,
      c.Backend.Type,
      c.Backend.VNI,
      c.Backend.Port,
      c.Backend.MTU ?? null,
      c.Backend.DirectRouting,
    ])
  return canon(a) === canon(b)
}
