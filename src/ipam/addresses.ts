import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PlexusError } from '../lib/errors.js'
import { writeFileAtomic } from '../lib/fs.js'
import {
  type Cidr,
  containsAddress,
  formatCidr,
  formatIPv4,
  lastAddress,
  parseCidr,
  parseIPv4,
  sameCidr,
} from './cidr.js'
import { gatewayOf } from './leases.js'

// Container addresses inside this host's subnet (what CNI ADD/DEL/GC use).
// Like host-local: persisted under the state dir so a restarted agent never
// hands an address out twice, keyed by container id + interface name so a
// repeated ADD gets the same address back, and handed out round-robin after
// the last one so a released address is not reused at once (stale ARP and
// conntrack entries elsewhere still point at it).

export interface Allocation {
  containerId: string
  ifname: string
  /** address without prefix length */
  address: string
  /** the host subnet it was allocated from (CIDR) */
  subnet: string
  allocatedAt: string
}

/** What ADD needs to configure the container side. */
export interface AllocationResult extends Allocation {
  prefixLength: number
  /** the bridge address: the subnet's first address */
  gateway: string
  /** false when a repeated ADD got its earlier address back */
  created: boolean
}

export interface AllocationState {
  allocations: Allocation[]
  /** per subnet, the last address handed out (round-robin start point) */
  last: Record<string, string>
}

export interface AllocateRequest {
  containerId: string
  ifname: string
  /** a static address request (CNI `ips` capability), without prefix length */
  address?: string
}

export interface AttachmentKey {
  containerId: string
  ifname: string
}

const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/
// Linux interface names: at most 15 bytes, no '/', ':' or white space, not '.' or '..'.
const IFNAME_RE = /^(?!\.{1,2}$)[^/:\s]{1,15}$/

function checkKey(k: AttachmentKey): void {
  if (typeof k.containerId !== 'string' || !CONTAINER_ID_RE.test(k.containerId)) {
    throw new PlexusError(
      'PLX_IPAM_INVALID_ARGUMENT',
      `container id ${JSON.stringify(k.containerId)} is not valid (letters, digits, "_", ".", "-")`,
    )
  }
  if (typeof k.ifname !== 'string' || !IFNAME_RE.test(k.ifname)) {
    throw new PlexusError(
      'PLX_IPAM_INVALID_ARGUMENT',
      `interface name ${JSON.stringify(k.ifname)} is not valid`,
    )
  }
}

const sameKey = (a: AttachmentKey, b: AttachmentKey) =>
  a.containerId === b.containerId && a.ifname === b.ifname

/** First and last address containers may get: not the network, the gateway or the broadcast address. */
function usableRange(subnet: Cidr): [number, number] {
  return [gatewayOf(subnet) + 1, lastAddress(subnet) - 1]
}

/**
 * Pure allocation step: returns the new state and the allocation, or throws
 * a typed error. An earlier allocation of the same attachment in another
 * (old) subnet is replaced: the host's lease moved, that address is dead.
 */
export function allocateIn(
  state: AllocationState,
  subnet: Cidr,
  req: AllocateRequest,
  now: Date,
): { state: AllocationState; allocation: Allocation; created: boolean } {
  checkKey(req)
  const subnetText = formatCidr(subnet)
  const existing = state.allocations.find((a) => sameKey(a, req) && a.subnet === subnetText)
  if (existing) {
    if (req.address !== undefined && req.address !== existing.address) {
      throw new PlexusError(
        'PLX_IPAM_TAKEN',
        `${req.containerId}/${req.ifname} already holds ${existing.address}, not ${req.address}`,
      )
    }
    return { state, allocation: existing, created: false }
  }
  const others = state.allocations.filter((a) => !sameKey(a, req))
  const taken = new Set(others.filter((a) => a.subnet === subnetText).map((a) => parseIPv4(a.address)))
  const [first, last] = usableRange(subnet)
  let ip: number
  if (req.address !== undefined) {
    const want = parseIPv4(req.address)
    if (want === undefined)
      throw new PlexusError(
        'PLX_IPAM_INVALID_ARGUMENT',
        `requested address ${JSON.stringify(req.address)} is not an IPv4 address`,
      )
    if (!containsAddress(subnet, want)) {
      throw new PlexusError(
        'PLX_IPAM_OUT_OF_RANGE',
        `requested address ${req.address} is outside this host's subnet ${subnetText}`,
      )
    }
    if (want < first || want > last) {
      const what = want === subnet.base ? 'network' : want === gatewayOf(subnet) ? 'gateway' : 'broadcast'
      throw new PlexusError(
        'PLX_IPAM_RESERVED',
        `requested address ${req.address} is the ${what} address of ${subnetText}`,
      )
    }
    if (taken.has(want)) {
      const holder = others.find((a) => a.address === req.address)
      throw new PlexusError(
        'PLX_IPAM_TAKEN',
        `requested address ${req.address} is taken by ${holder?.containerId}/${holder?.ifname}`,
      )
    }
    ip = want
  } else {
    const lastIp = parseIPv4(state.last[subnetText] ?? '')
    const count = last - first + 1
    const start = lastIp !== undefined && lastIp >= first && lastIp < last ? lastIp + 1 : first
    let found: number | undefined
    // At most taken.size + 1 probes: the loop stops at the first free address.
    for (let i = 0; i < count; i++) {
      const cand = first + ((start - first + i) % count)
      if (!taken.has(cand)) {
        found = cand
        break
      }
    }
    if (found === undefined) {
      throw new PlexusError(
        'PLX_IPAM_EXHAUSTED',
        `no free address in ${subnetText}: all ${count} container addresses are in use`,
      )
    }
    ip = found
  }
  const allocation: Allocation = {
    containerId: req.containerId,
    ifname: req.ifname,
    address: formatIPv4(ip),
    subnet: subnetText,
    allocatedAt: now.toISOString(),
  }
  const last_ = req.address === undefined ? { ...state.last, [subnetText]: allocation.address } : state.last
  return { state: { allocations: [...others, allocation], last: last_ }, allocation, created: true }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Validates the state file; a damaged file stops the agent rather than risk handing an address out twice. */
export function parseAllocationState(file: string, text: string): AllocationState {
  const corrupt = (why: string) =>
    new PlexusError('PLX_IPAM_STATE_CORRUPT', `${file}: ${why}; fix or remove the file`, { file })
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw corrupt(`not JSON (${(err as Error).message})`)
  }
  if (!isObject(data) || data.version !== 1 || !Array.isArray(data.allocations) || !isObject(data.last)) {
    throw corrupt('not a version 1 allocation state')
  }
  const seen = new Set<string>()
  const allocations = data.allocations.map((a, i): Allocation => {
    const subnet = isObject(a) ? parseCidr(a.subnet) : { reason: 'not an object' }
    const ip = isObject(a) && typeof a.address === 'string' ? parseIPv4(a.address) : undefined
    if (
      !isObject(a) ||
      'reason' in subnet ||
      ip === undefined ||
      !containsAddress(subnet.cidr, ip) ||
      typeof a.allocatedAt !== 'string'
    ) {
      throw corrupt(`allocation ${i} is malformed`)
    }
    const entry = {
      containerId: a.containerId,
      ifname: a.ifname,
      address: a.address,
      subnet: a.subnet,
      allocatedAt: a.allocatedAt,
    } as Allocation
    try {
      checkKey(entry)
    } catch (err) {
      throw corrupt(`allocation ${i}: ${(err as Error).message}`)
    }
    const id = `${entry.subnet} ${entry.address}`
    if (seen.has(id)) throw corrupt(`address ${entry.address} is allocated twice`)
    seen.add(id)
    return entry
  })
  const last = Object.fromEntries(
    Object.entries(data.last).filter(([, v]) => typeof v === 'string'),
  ) as Record<string, string>
  return { allocations, last }
}

export const ALLOCATIONS_FILE = 'allocations.json'

/**
 * The persisted allocator. Every mutation runs through one queue (so
 * concurrent ADDs never pick the same address) and is on disk before the
 * caller hears of it. The subnet comes from the host's current lease.
 */
export class AddressAllocator {
  private queue: Promise<unknown> = Promise.resolve()

  private constructor(
    readonly file: string,
    private state: AllocationState,
    private readonly currentSubnet: () => Cidr | undefined,
  ) {}

  /** Loads (or starts) `<dir>/allocations.json`. */
  static async open(dir: string, currentSubnet: () => Cidr | undefined): Promise<AddressAllocator> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const file = join(dir, ALLOCATIONS_FILE)
    let state: AllocationState = { allocations: [], last: {} }
    try {
      state = parseAllocationState(file, await readFile(file, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    return new AddressAllocator(file, state, currentSubnet)
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return run
  }

  private async commit(next: AllocationState): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify({ version: 1, ...next }, null, 1)}\n`, 0o600)
    this.state = next
  }

  private subnetOrThrow(): Cidr {
    const s = this.currentSubnet()
    if (!s) throw new PlexusError('PLX_IPAM_NO_LEASE', 'this host holds no subnet lease yet', { status: 503 })
    return s
  }

  allocate(req: AllocateRequest): Promise<AllocationResult> {
    return this.serialized(async () => {
      const subnet = this.subnetOrThrow()
      const r = allocateIn(this.state, subnet, req, new Date())
      if (r.created) await this.commit(r.state)
      return {
        ...r.allocation,
        prefixLength: subnet.prefix,
        gateway: formatIPv4(gatewayOf(subnet)),
        created: r.created,
      }
    })
  }

  /** Idempotent: releasing an unknown attachment releases nothing and returns []. */
  release(key: AttachmentKey): Promise<Allocation[]> {
    return this.serialized(async () => {
      const gone = this.state.allocations.filter((a) => sameKey(a, key))
      if (gone.length)
        await this.commit({
          ...this.state,
          allocations: this.state.allocations.filter((a) => !sameKey(a, key)),
        })
      return gone
    })
  }

  /** CNI GC: releases every allocation whose attachment is not in `keep`; returns what it released. */
  gc(keep: AttachmentKey[]): Promise<Allocation[]> {
    return this.serialized(async () => {
      const kept = this.state.allocations.filter((a) => keep.some((k) => sameKey(a, k)))
      const gone = this.state.allocations.filter((a) => !kept.includes(a))
      if (gone.length) await this.commit({ ...this.state, allocations: kept })
      return gone
    })
  }

  /** The attachment's allocation (at most one: a new one replaces any in an old subnet). */
  get(key: AttachmentKey): Allocation | undefined {
    return this.state.allocations.find((a) => sameKey(a, key))
  }

  list(): Allocation[] {
    return [...this.state.allocations]
  }

  /**
   * Allocations outside the current subnet (all of them while the host holds none): left behind when the
   * host's lease moved or was withdrawn. The CNI side re-attaches or removes them.
   */
  stale(): Allocation[] {
    const subnet = this.currentSubnet()
    if (!subnet) return [...this.state.allocations]
    return this.state.allocations.filter((a) => {
      const c = parseCidr(a.subnet)
      return 'reason' in c || !sameCidr(c.cidr, subnet)
    })
  }
}
