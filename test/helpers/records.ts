import type { Underlay } from '../../src/datapath/model.js'
import { cidrOf } from '../../src/ipam/cidr.js'
import type { EndpointValue, LeaseValue } from '../../src/store/records.js'
import type { JsonValue, StoreRecord } from '../../src/store/types.js'

/** host h1's underlay in the datapath's pure tests: eth0, 192.0.2.11 in 192.0.2.0/24 */
export const H1_UNDERLAY: Underlay = {
  ifname: 'eth0',
  ifindex: 2,
  address: '192.0.2.11',
  mtu: 1500,
  prefixes: [cidrOf('192.0.2.0/24')],
}

/** A valid endpoint record value for tests; `extra` overrides any field. */
export function endpointValue(name: string, ipv4: string, extra: Partial<EndpointValue> = {}): EndpointValue {
  return {
    containerId: `${name}-0123456789ab`,
    ifname: 'eth0',
    name,
    host: 'h1',
    ipv4,
    mac: '02:00:00:00:00:01',
    netns: `/run/netns/${name}`,
    hostVeth: `plx${name}`,
    labels: {},
    createdAt: '2026-01-01T00:00:00Z',
    ...extra,
  }
}

/** A lease record (`leases/…` or `netleases/…`) of `owner`, written `ageMs` before `now` with a 60 s TTL. */
export function leaseRecord(
  key: string,
  owner: string,
  value: Omit<LeaseValue, 'claimedAt'>,
  now: number,
  ageMs = 1000,
): StoreRecord {
  return {
    key,
    value: { ...value, claimedAt: now - ageMs } as unknown as JsonValue,
    owner,
    version: { wall: now - ageMs, logical: 0 },
    ttlMs: 60_000,
    tombstone: false,
    sig: '',
  }
}
