import t from 'tap'
import { buildCatalog, catalogInput, localCatalogInput } from '../../../src/services/catalog.js'
import { healthKey } from '../../../src/services/model.js'
import { endpointCodec, healthCodec, registrationCodec, serviceCodec } from '../../../src/store/codecs.js'
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

t.test("a host's own catalog (localCatalogInput) holds exactly its members of the whole one", async (t) => {
  const hosts = await Promise.all(['h1', 'h2'].map(async (name) => ({ name, ...(await newStore()) })))
  for (const [i, h] of hosts.entries()) {
    const self = h.signer.self
    await h.store.put(`nodes/${self}`, { name: h.name, address: `192.0.2.${i + 1}` })
    for (const cid of ['a', 'b']) {
      const endpointKey = `endpoints/${self}/${cid}/eth0`
      await h.store.put(
        endpointKey,
        endpointCodec.encode({
          containerId: cid,
          ifname: 'eth0',
          name: `${h.name}-${cid}`,
          host: h.name,
          ipv4: `10.244.${i + 1}.${cid === 'a' ? 2 : 3}`,
          mac: '02:00:00:00:00:01',
          netns: '/run/netns/x',
          hostVeth: 'v',
          labels: {},
          createdAt: new Date(0).toISOString(),
          service: 'web',
        }),
      )
      await h.store.put(
        `registrations/${self}/${cid}/eth0/api`,
        registrationCodec.encode({
          service: 'api',
          endpointKey,
          tags: [h.name],
          ports: [],
          checks: [check('live')],
        }),
      )
    }
    await h.store.put(
      healthKey(self, 'a', 'eth0', 'api', 'live'),
      healthCodec.encode({
        endpointKey: `endpoints/${self}/a/eth0`,
        service: 'api',
        check: 'live',
        status: 'passing',
        output: '',
        checkedAt: new Date(0).toISOString(),
      }),
    )
  }
  const [h1, h2] = hosts as [(typeof hosts)[0], (typeof hosts)[0]]
  await h2.store.put(
    'services/web',
    serviceCodec.encode({ name: 'web', tags: [], ports: [], checks: [check('up')] }),
  )
  h1.store.merge(h2.store.listHeld(''))
  const self = h1.signer.self
  const whole = buildCatalog(catalogInput(h1.store))
  const local = buildCatalog(localCatalogInput(h1.store, self))
  const members = (c: typeof whole, peer?: string) =>
    [...c.services.values()].flatMap((s) => s.members.filter((m) => peer === undefined || m.peer === peer))
  t.equal(members(whole).length, 8, 'the whole catalog: 2 hosts × 2 endpoints × 2 services')
  t.same(members(local), members(whole, self), "h1's own: the same members, field for field")
  t.equal(members(local).length, 4)
  t.ok(
    members(local)
      .filter((m) => m.service === 'web')
      .every((m) => m.checks.some((c) => c.name === 'up')),
    "another host's service definition still gives the members its checks",
  )
})
