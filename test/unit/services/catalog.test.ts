import t from 'tap'
import { buildCatalog, catalogInput } from '../../../src/services/catalog.js'
import { healthKey } from '../../../src/services/model.js'
import { endpointCodec, healthCodec } from '../../../src/store/codecs.js'
import type { CheckSpec, EndpointValue } from '../../../src/store/records.js'
import { newStore } from '../store/helpers.js'

const check = (name: string): CheckSpec => ({
  name,
  type: 'tcp',
  port: 80,
  intervalMs: 1000,
  timeoutMs: 500,
  failures: 1,
})

t.test(
  'a member with checks is healthy only once each of them has passed; without checks as it joins',
  async (t) => {
    const { store, signer } = await newStore()
    const self = signer.self
    const endpoint = (cid: string, extra: Partial<EndpointValue>) =>
      store.put(
        `endpoints/${self}/${cid}/eth0`,
        endpointCodec.encode({
          containerId: cid,
          ifname: 'eth0',
          name: cid,
          host: 'h1',
          ipv4: `10.244.1.${cid.length + 1}`,
          mac: '02:00:00:00:00:01',
          netns: '/run/netns/x',
          hostVeth: 'v',
          labels: {},
          createdAt: new Date(0).toISOString(),
          ...extra,
        }),
      )
    const result = (cid: string, service: string, name: string, status: 'passing' | 'critical') =>
      store.put(
        healthKey(self, cid, 'eth0', service, name),
        healthCodec.encode({
          endpointKey: `endpoints/${self}/${cid}/eth0`,
          service,
          check: name,
          status,
          output: '',
          checkedAt: new Date(0).toISOString(),
        }),
      )
    const healthy = () => {
      const c = buildCatalog(catalogInput(store))
      return Object.fromEntries(
        [...c.services.values()].flatMap((s) => s.members.map((m) => [`${s.name}/${m.name}`, m.healthy])),
      )
    }
    await endpoint('a', { service: 'web', checks: [check('up'), check('ready')] })
    await endpoint('bb', { service: 'db' })
    t.same(healthy(), { 'web/a': false, 'db/bb': true }, 'no result yet: critical, like Consul')
    await result('a', 'web', 'up', 'passing')
    t.same(healthy()['web/a'], false, 'one of two checks passed')
    await result('a', 'other', 'ready', 'passing')
    t.same(healthy()['web/a'], false, "another service's result does not count")
    await result('a', 'web', 'ready', 'passing')
    t.same(healthy()['web/a'], true, 'every check passed')
    await result('a', 'web', 'up', 'critical')
    t.same(healthy()['web/a'], false, 'a critical check takes it out again')
    await result('bb', 'db', 'gone', 'critical')
    t.same(healthy()['db/bb'], false, 'a critical result counts for a member without checks, as before')
  },
)
