// Addressing one container asks for: a static address, a MAC, a default
// gateway other than the bridge, extra routes. One set of rules for the three
// places that take them: the CNI plugin (cni/lib/config.ts: what can be said
// without the host subnet), the agent's ADD (src/endpoints: again, and against
// the host subnet, since its API is reachable without the plugin) and job specs
// (src/scheduler/spec.ts), so they never disagree. Every problem is collected
// with its field, never only the first: a refusal names all of them.
// A leaf that imports nothing: the CNI plugin loads it, and its start-up is
// every container's latency.

/** an extra route in the container, spelled as the CNI result's `routes` (gw absent: the container's gateway) */
export interface RouteRequest {
  dst: string
  gw?: string
}

/** what one container interface may ask for */
export interface AddressingRequest {
  /** "a.b.c.d" or "a.b.c.d/len" */
  ip?: string
  mac?: string
  gateway?: string
  routes?: RouteRequest[]
}

export interface AddressingProblem {
  field: string
  message: string
}

/** the most extra routes one interface may ask for: each is a netlink request inside ADD */
export const MAX_ROUTES = 32

/** an IPv4 network as unsigned 32-bit base and prefix length (the shape of src/ipam/cidr.ts's Cidr) */
export interface Subnet {
  base: number
  prefix: number
}

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s)
  if (!m) return undefined
  const o = m.slice(1).map(Number)
  if (o.some((x) => x > 255)) return undefined
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)

/** "a.b.c.d" or "a.b.c.d/len" (IPv4 only: the overlay is IPv4); what is wrong, or undefined. */
export function validStaticIp(s: string): string | undefined {
  const [addr, len, extra] = s.split('/')
  if (extra !== undefined || addr === undefined) return 'is not an IPv4 address'
  if (addr.includes(':')) return 'is IPv6; the Plexus overlay is IPv4 only'
  if (parseIPv4(addr) === undefined) return 'is not an IPv4 address'
  if (len !== undefined && !(/^\d{1,2}$/.test(len) && Number(len) <= 32))
    return 'has an invalid prefix length'
  return undefined
}

/** Unicast MAC "aa:bb:cc:dd:ee:ff" (the reference plugins' `mac` capability format); returned lower-case. */
export function normalizeMac(s: string): string | undefined {
  if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(s)) return undefined
  const mac = s.toLowerCase().replace(/-/g, ':')
  // bit 0 of the first octet marks multicast, which an interface cannot own
  return Number.parseInt(mac.slice(0, 2), 16) & 1 ? undefined : mac
}

/** A static address; undefined (and a problem) when it is not one. */
export function readStaticIp(field: string, v: unknown, out: AddressingProblem[]): string | undefined {
  const problem = typeof v === 'string' ? validStaticIp(v) : 'must be a string'
  if (problem) out.push({ field, message: typeof v === 'string' ? `"${v}" ${problem}` : problem })
  return problem ? undefined : (v as string)
}

/** A MAC, lower-case; undefined (and a problem) when it is not a unicast one. */
export function readMac(field: string, v: unknown, out: AddressingProblem[]): string | undefined {
  const mac = typeof v === 'string' ? normalizeMac(v) : undefined
  if (!mac) out.push({ field, message: `${JSON.stringify(v)} is not a unicast MAC address` })
  return mac
}

/** A unicast IPv4 address a route can go through; what is wrong, or undefined. */
function nextHopProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return 'must be a string'
  if (v.includes(':')) return `"${v}" is IPv6; the Plexus overlay is IPv4 only`
  const n = parseIPv4(v)
  if (n === undefined) return `"${v}" is not an IPv4 address`
  if (n === 0 || n >>> 28 >= 14) return `"${v}" is not a unicast address`
  return undefined
}

/** `gateway`: the address the container's default route goes through. */
export function readGateway(field: string, v: unknown, out: AddressingProblem[]): string | undefined {
  const problem = nextHopProblem(v)
  if (problem) out.push({ field, message: problem })
  return problem ? undefined : (v as string)
}

/** "a.b.c.d/len" with no host bits set; the network, or what is wrong. */
function parseDst(v: unknown): Subnet | string {
  if (typeof v !== 'string') return 'must be a CIDR string like 192.168.0.0/16'
  const m = /^([^/]+)\/(\d{1,2})$/.exec(v)
  const ip = m?.[1] ? parseIPv4(m[1]) : undefined
  const prefix = Number(m?.[2])
  if (ip === undefined || !(prefix >= 0 && prefix <= 32))
    return `"${v}" is not an IPv4 CIDR like 192.168.0.0/16`
  const base = (ip & maskOf(prefix)) >>> 0
  // the kernel refuses it (EINVAL) and masking it silently would hide a typo
  if (base !== ip) return `"${v}" has host bits set (the network is ${formatIPv4(base)}/${prefix})`
  if (prefix === 0) return 'is the default route: ask for it with "gateway"'
  return { base, prefix }
}

/**
 * `routes`: at most MAX_ROUTES of {dst, gw?}, each dst an IPv4 network (not
 * the default: that is `gateway`) named once, gw an IPv4 address. The routes
 * only when all of them are well-formed.
 */
export function readRoutes(field: string, v: unknown, out: AddressingProblem[]): RouteRequest[] | undefined {
  if (!Array.isArray(v)) {
    out.push({ field, message: 'must be an array of {dst, gw}' })
    return undefined
  }
  if (v.length > MAX_ROUTES) {
    out.push({ field, message: `asks for ${v.length} routes, at most ${MAX_ROUTES}` })
    return undefined
  }
  const before = out.length
  const seen = new Map<string, number>()
  const routes = v.map((r: unknown, i): RouteRequest => {
    const f = `${field}[${i}]`
    if (typeof r !== 'object' || r === null || Array.isArray(r)) {
      out.push({ field: f, message: 'must be an object {dst, gw}' })
      return { dst: '' }
    }
    const { dst, gw, ...rest } = r as Record<string, unknown>
    for (const k of Object.keys(rest))
      out.push({ field: `${f}.${k}`, message: 'is not supported (only dst and gw)' })
    const net = parseDst(dst)
    if (typeof net === 'string') out.push({ field: `${f}.dst`, message: net })
    else {
      const key = `${net.base}/${net.prefix}`
      const other = seen.get(key)
      if (other !== undefined)
        out.push({ field: `${f}.dst`, message: `"${dst}" is also the dst of ${field}[${other}]` })
      else seen.set(key, i)
    }
    if (gw === undefined) return { dst: dst as string }
    const problem = nextHopProblem(gw)
    if (problem) out.push({ field: `${f}.gw`, message: problem })
    return { dst: dst as string, gw: gw as string }
  })
  return out.length === before ? routes : undefined
}

/**
 * What does not fit the host subnet: the static address outside it or on its
 * network, bridge or broadcast address, or with another prefix length; a
 * gateway or route gw the container cannot reach on its interface (outside
 * the subnet), on the network or broadcast address, or the container's own
 * address (`own`: the static one, or the allocated one once known); a route
 * to the subnet itself (its interface route already is). Values are assumed
 * well-formed (readGateway, readRoutes, validStaticIp passed).
 */
export function subnetProblems(a: AddressingRequest, subnet: Subnet, own?: string): AddressingProblem[] {
  const out: AddressingProblem[] = []
  const last = (subnet.base + 2 ** (32 - subnet.prefix) - 1) >>> 0
  const text = `${formatIPv4(subnet.base)}/${subnet.prefix}`
  const inside = (n: number) => n >= subnet.base && n <= last
  const [ipText, ipLen] = (a.ip ?? '').split('/')
  const ownText = own ?? (ipText || undefined)
  const reserved = (n: number): string | undefined =>
    n === subnet.base ? 'network' : n === last && subnet.prefix < 31 ? 'broadcast' : undefined
  if (a.ip) {
    const n = parseIPv4(ipText ?? '') as number
    const what = n === subnet.base + 1 ? 'gateway' : reserved(n)
    if (ipLen !== undefined && Number(ipLen) !== subnet.prefix)
      out.push({
        field: 'ip',
        message: `${a.ip} has prefix length /${ipLen}, the host subnet is /${subnet.prefix}`,
      })
    else if (!inside(n)) out.push({ field: 'ip', message: `${ipText} is outside this host's subnet ${text}` })
    else if (what) out.push({ field: 'ip', message: `${ipText} is the ${what} address of ${text}` })
  }
  const hop = (field: string, addr: string) => {
    const n = parseIPv4(addr) as number
    if (!inside(n))
      out.push({
        field,
        message: `${addr} is outside this host's subnet ${text}: the container cannot reach it`,
      })
    else if (reserved(n)) out.push({ field, message: `${addr} is the ${reserved(n)} address of ${text}` })
    else if (addr === ownText) out.push({ field, message: `${addr} is the container's own address` })
  }
  if (a.gateway) hop('gateway', a.gateway)
  a.routes?.forEach((r, i) => {
    if (r.dst === text)
      out.push({
        field: `routes[${i}].dst`,
        message: `${r.dst} is the container's own subnet, routed on its interface`,
      })
    if (r.gw) hop(`routes[${i}].gw`, r.gw)
  })
  return out
}

/** the problems as one line each, "field: message" */
export function describeProblems(problems: AddressingProblem[]): string[] {
  return problems.map((p) => `${p.field} ${p.message}`)
}
