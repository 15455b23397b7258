import type { EndpointValue } from '../../src/store/records.js'

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
