// Who is calling the application API: a request from a container's address is
// that container's endpoint (anti-spoofing in the datapath drops packets whose
// source is not the sending veth's container, so the address cannot be borrowed).
import { endpointCodec } from '../store/codecs.js'
import { ENDPOINT_PREFIX, type ReadableStore, type StoreRecord } from '../store/types.js'
import { type Acl, aclFor, aclRecords } from './acl.js'
import type { Endpoint } from './catalog.js'

/** A socket's remote address as the endpoint table writes it (IPv4-mapped IPv6 unwrapped). */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/** This host's (`self`) endpoints by address (IPv4 and IPv6), from the records under `endpoints/<self>/`. Pure. */
export function endpointsByAddress(records: StoreRecord[], self: string): Map<string, Endpoint> {
  const prefix = `${ENDPOINT_PREFIX}${self}/`
  const out = new Map<string, Endpoint>()
  for (const r of records) {
    const value = r.key.startsWith(prefix) ? endpointCodec.valueOf(r) : undefined
    if (!value) continue
    const ep = { key: r.key, peer: self, value }
    out.set(value.ipv4, ep)
    if (value.ipv6) out.set(value.ipv6, ep)
  }
  return out
}

/**
 * The endpoint of this host (`self`) whose address is `address`; undefined
 * when none is: another host's container, the host itself, anything else. Pure.
 */
export function callerEndpoint(records: StoreRecord[], self: string, address: string): Endpoint | undefined {
  return endpointsByAddress(records, self).get(plainAddress(address))
}

/**
 * What the application API asks on every request, kept between requests:
 * this host's endpoints by address and the access policies, read again only
 * when the store changed (a listing scans the whole store; at 50,000 records
 * that is milliseconds a request).
 */
export class CallerView {
  private index = -1
  private byAddress = new Map<string, Endpoint>()
  private records: ReturnType<typeof aclRecords> = { policies: [], defaultPolicy: 'allow' }

  constructor(
    private readonly store: Pick<ReadableStore, 'index' | 'list' | 'get'>,
    private readonly self: string,
  ) {}

  private fresh(): void {
    if (this.store.index === this.index) return
    this.index = this.store.index
    this.byAddress = endpointsByAddress(this.store.list(`${ENDPOINT_PREFIX}${this.self}/`), this.self)
    this.records = aclRecords(this.store)
  }

  /** the endpoint calling from `address`, if it is one of this host's */
  caller(address: string): Endpoint | undefined {
    this.fresh()
    return this.byAddress.get(plainAddress(address))
  }

  /** the caller's ACL: the policies bound to its CNI service or its name, and the default */
  acl(ep: Endpoint): Acl {
    this.fresh()
    const caller = { name: ep.value.name, ...(ep.value.service ? { service: ep.value.service } : {}) }
    return aclFor(caller, this.records.policies, this.records.defaultPolicy)
  }
}
