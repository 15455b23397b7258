import { CniCode, CniError } from './errors.js'
import { compareVersions } from './version.js'

// The result in its newest (1.1.0) shape. The agent answers in this shape and
// the plugin converts it down to whatever version the runtime asked for.

export interface CniInterface {
  name: string
  mac?: string
  /** 1.1.0 */
  mtu?: number
  sandbox?: string
  /** 1.1.0 */
  socketPath?: string
  /** 1.1.0 */
  pciID?: string
}

export interface CniIp {
  /** CIDR: address with prefix length */
  address: string
  gateway?: string
  /** index into interfaces */
  interface?: number
}

export interface CniRoute {
  dst: string
  gw?: string
  /** 1.1.0 */
  mtu?: number
  advmss?: number
  priority?: number
  table?: number
  scope?: number
}

export interface CniDns {
  nameservers?: string[]
  domain?: string
  search?: string[]
  options?: string[]
}

export interface CniResult {
  cniVersion: string
  interfaces?: CniInterface[]
  ips?: CniIp[]
  routes?: CniRoute[]
  dns?: CniDns
}

const ROUTE_11_FIELDS = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const
const IFACE_11_FIELDS = ['mtu', 'socketPath', 'pciID'] as const

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function bad(path: string, what: string): CniError {
  return new CniError(CniCode.DECODE, `prevResult: field "${path}" ${what}`)
}

function optString(o: Record<string, unknown>, k: string, path: string): string | undefined {
  const v = o[k]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw bad(`${path}.${k}`, 'must be a string')
  return v
}

function optInt(o: Record<string, unknown>, k: string, path: string): number | undefined {
  const v = o[k]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw bad(`${path}.${k}`, 'must be a non-negative integer')
  return v
}

function optStrings(o: Record<string, unknown>, k: string, path: string): string[] | undefined {
  const v = o[k]
  if (v === undefined) return undefined
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw bad(`${path}.${k}`, 'must be an array of strings')
  return v
}

function list(o: Record<string, unknown>, k: string): Record<string, unknown>[] | undefined {
  const v = o[k]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every(isObject)) throw bad(k, 'must be an array of objects')
  return v
}

function strip<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/**
 * Reads a result of any supported version (a chain's prevResult) into the
 * 1.1.0 shape. 0.3.x/0.4.0 results carry `version` on each IP: dropped here.
 */
export function parseResult(raw: unknown, cniVersion: string): CniResult {
  if (!isObject(raw)) throw new CniError(CniCode.DECODE, 'prevResult must be an object')
  const interfaces = list(raw, 'interfaces')?.map((i, n) => {
    const path = `interfaces[${n}]`
    const name = optString(i, 'name', path)
    if (!name) throw bad(`${path}.name`, 'is required')
    return strip<CniInterface>({
      name,
      mac: optString(i, 'mac', path),
      mtu: optInt(i, 'mtu', path),
      sandbox: optString(i, 'sandbox', path),
      socketPath: optString(i, 'socketPath', path),
      pciID: optString(i, 'pciID', path),
    })
  })
  const ips = list(raw, 'ips')?.map((i, n) => {
    const path = `ips[${n}]`
    const address = optString(i, 'address', path)
    if (!address) throw bad(`${path}.address`, 'is required')
    const iface = optInt(i, 'interface', path)
    if (iface !== undefined && iface >= (interfaces?.length ?? 0))
      throw bad(`${path}.interface`, 'points past interfaces')
    return strip<CniIp>({ address, gateway: optString(i, 'gateway', path), interface: iface })
  })
  const routes = list(raw, 'routes')?.map((r, n) => {
    const path = `routes[${n}]`
    const dst = optString(r, 'dst', path)
    if (!dst) throw bad(`${path}.dst`, 'is required')
    return strip<CniRoute>({
      dst,
      gw: optString(r, 'gw', path),
      mtu: optInt(r, 'mtu', path),
      advmss: optInt(r, 'advmss', path),
      priority: optInt(r, 'priority', path),
      table: optInt(r, 'table', path),
      scope: optInt(r, 'scope', path),
    })
  })
  let dns: CniDns | undefined
  if (raw.dns !== undefined) {
    if (!isObject(raw.dns)) throw bad('dns', 'must be an object')
    dns = strip<CniDns>({
      nameservers: optStrings(raw.dns, 'nameservers', 'dns'),
      domain: optString(raw.dns, 'domain', 'dns'),
      search: optStrings(raw.dns, 'search', 'dns'),
      options: optStrings(raw.dns, 'options', 'dns'),
    })
  }
  return strip<CniResult>({ cniVersion, interfaces, ips, routes, dns })
}

/** Converts a 1.1.0-shaped result to the shape of `version`. */
export function convertResult(result: CniResult, version: string): Record<string, unknown> {
  const pre11 = compareVersions(version, '1.1.0') < 0
  const pre10 = compareVersions(version, '1.0.0') < 0
  const out: Record<string, unknown> = { cniVersion: version }
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => {
      const c: Record<string, unknown> = { ...i }
      if (pre11) for (const f of IFACE_11_FIELDS) delete c[f]
      return c
    })
  }
  if (result.ips) {
    out.ips = result.ips.map((ip) =>
      pre10 ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : { ...ip },
    )
  }
  if (result.routes) {
    out.routes = result.routes.map((r) => {
      const c: Record<string, unknown> = { ...r }
      if (pre11) for (const f of ROUTE_11_FIELDS) delete c[f]
      return c
    })
  }
  // 0.3.x/0.4.0 always carried a dns object; 1.x omits it when empty.
  if (result.dns) out.dns = { ...result.dns }
  else if (pre10) out.dns = {}
  return out
}

/**
 * Appends this plugin's result to a chain's prevResult: interfaces are
 * appended, so the IPs' interface indexes shift by the previous count.
 */
export function mergeResults(prev: CniResult | undefined, ours: CniResult): CniResult {
  if (!prev) return ours
  const shift = prev.interfaces?.length ?? 0
  return strip<CniResult>({
    cniVersion: ours.cniVersion,
    interfaces: [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])],
    ips: [
      ...(prev.ips ?? []),
      ...(ours.ips ?? []).map((ip) =>
        ip.interface === undefined ? ip : { ...ip, interface: ip.interface + shift },
      ),
    ],
    routes: [...(prev.routes ?? []), ...(ours.routes ?? [])],
    dns: ours.dns ?? prev.dns,
  })
}
