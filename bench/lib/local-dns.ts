// The agent's DNS service over a given store, listening on 127.0.0.1:<port> only,
// forwarding nowhere useful: what bench/dns-target and bench/zone measure.
import { pino } from 'pino'
import { defaultConfig } from '../../src/agent/config.js'
import { defaultDnsConfig } from '../../src/dns/config.js'
import { DnsService } from '../../src/dns/service.js'
import { Metrics } from '../../src/lib/metrics.js'
import type { ReadableStore } from '../../src/store/types.js'

/** Built, not started: the constructor compiles the zone (bench/zone times that). */
export function localDns(store: ReadableStore, peerId: string, port: number): DnsService {
  const config = {
    ...defaultConfig(),
    dns: {
      ...defaultDnsConfig(),
      listenGateway: false,
      listen: ['127.0.0.1'],
      port,
      upstreams: ['127.0.0.9:53'],
    },
  }
  return new DnsService({ config, logger: pino({ level: 'silent' }), metrics: new Metrics(), store, peerId })
}
