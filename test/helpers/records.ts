import type { Underlay } from '../../src/datapath/model.js'
import { cidrOf } from '../../src/ipam/cidr.js'
import type { EndpointValue } from '../../src/store/records.js'

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
