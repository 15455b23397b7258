// plexus_dns_zone_update_seconds: the first build is recorded as a full update,
// every update after a store change as a change update (issue 22: bench/converge
// reads it from the agents' /metrics at 50,000 records).
import { pino } from 'pino'
import t from 'tap'
import { defaultConfig } from '../../../src/agent/config.js'
import { defaultDnsConfig } from '../../../src/dns/config.js'
import { DnsService } from '../../../src/dns/service.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { newStore } from '../store/helpers.js'

const NAME = 'plexus_dns_zone_update_seconds'

t.test('zone updates are timed by kind', async (t) => {
  const { store, signer } = await newStore({
    now: {
      get t() {
        return Date.now()
      },
    },
  })
  const self = signer.self
  await store.put(`nodes/${self}`, { name: 'h1', address: '192.0.2.11' })
  const metrics = new Metrics()
  const config = { ...defaultConfig(), dns: { ...defaultDnsConfig(), listenGateway: false, listen: [] } }
  const dns = new DnsService({ config, logger: pino({ level: 'silent' }), metrics, store, peerId: self })
  const count = (kind: string) => metrics.value(`${NAME}_count`, { kind })
  t.equal(await count('full'), 1, 'the first build, in the constructor, is one full update')
  await dns.start()
  t.teardown(() => dns.stop())
  const before = await count('changes')
  await store.put(`endpoints/${self}/c1/eth0`, {
    containerId: 'c1',
    ifname: 'eth0',
    name: 'web1',
    host: 'h1',
    ipv4: '10.244.1.2',
    mac: '02:00:00:00:00:01',
    netns: '/run/netns/c1',
    hostVeth: 'veth0',
    labels: {},
    createdAt: new Date().toISOString(),
  })
  const end = Date.now() + 5000
  while ((await count('changes')) === before && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  t.equal(await count('changes'), before + 1, 'the change made one change update')
  t.ok(dns.status().zone.names > 0, 'the zone holds names')
  t.ok((await metrics.value(`${NAME}_sum`, { kind: 'changes' })) > 0, 'its time is recorded')
  const text = await metrics.text()
  t.match(text, /plexus_dns_zone_update_seconds_bucket\{le="0\.1",kind="changes"\} \d+/, 'by bucket')
})
