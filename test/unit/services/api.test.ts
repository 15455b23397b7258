import t, { type Test } from 'tap'
import type { JsonValue } from '../../../src/store/types.js'
import { testApp } from '../../helpers/components.js'
import { newStore } from '../store/helpers.js'

async function setup(t: Test) {
  const { store, clock, signer } = await newStore()
  const { app } = await testApp(t, { peerId: signer.self, store })
  const endpoint = (cid: string, ip: string, extra: Record<string, JsonValue> = {}) =>
    store.put(`endpoints/${signer.self}/${cid}/eth0`, {
      containerId: cid,
      ifname: 'eth0',
      name: `ctr-${cid.slice(0, 4)}`,
      host: 'h1',
      ipv4: ip,
      mac: '02:00:00:00:00:01',
      netns: `/run/netns/${cid}`,
      hostVeth: 'veth0',
      labels: {},
      createdAt: new Date(clock.t).toISOString(),
      ...extra,
    })
  return { app, store, clock, self: signer.self, endpoint }
}

t.test('define, list, show and delete a service', async (t) => {
  const { app, endpoint } = await setup(t)
  let res = await app.inject({
    method: 'PUT',
    url: '/v1/services/web',
    payload: {
      tags: ['prod'],
      ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
      checks: [{ name: 'up', type: 'tcp', port: 'http' }],
    },
  })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json().checks[0], {
    name: 'up',
    type: 'tcp',
    port: 'http',
    intervalMs: 5000,
    timeoutMs: 2000,
    failures: 3,
  })
  await endpoint('aaaa1111', '10.244.1.2', { service: 'web' })
  await endpoint('bbbb2222', '10.244.1.3')
  res = await app.inject({ method: 'GET', url: '/v1/services' })
  t.same(res.json(), [
    {
      name: 'web',
      defined: true,
      tags: ['prod'],
      ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
      checks: [{ name: 'up', type: 'tcp', port: 'http', intervalMs: 5000, timeoutMs: 2000, failures: 3 }],
      // its check has not passed yet: a member, not yet healthy
      healthy: 0,
      total: 1,
      hosts: [{ host: 'h1', healthy: 0, total: 1 }],
    },
  ])
  res = await app.inject({ method: 'GET', url: '/v1/services/web' })
  t.equal(res.json().endpoints[0].name, 'ctr-aaaa')
  t.equal(res.json().endpoints[0].source, 'cni')
  t.same(res.json().endpoints[0].tags, ['prod'])
  res = await app.inject({ method: 'DELETE', url: '/v1/services/web' })
  t.equal(res.statusCode, 204)
  res = await app.inject({ method: 'DELETE', url: '/v1/services/web' })
  t.equal(res.json().error, 'PLX_SERVICE_NOT_FOUND')
  t.equal(res.statusCode, 404)
  res = await app.inject({ method: 'GET', url: '/v1/services/nope' })
  t.equal(res.statusCode, 404)
})

t.test('bad input is refused with codes', async (t) => {
  const { app } = await setup(t)
  let res = await app.inject({ method: 'PUT', url: '/v1/services/Bad_Name', payload: {} })
  t.equal(res.json().error, 'PLX_SERVICE_BAD_NAME')
  res = await app.inject({
    method: 'PUT',
    url: '/v1/services/web',
    payload: { ports: [{ port: 99999, protocol: 'tcp' }] },
  })
  t.equal(res.json().error, 'PLX_API_BAD_REQUEST')
  res = await app.inject({
    method: 'PUT',
    url: '/v1/services/web',
    payload: { checks: [{ name: 'c', type: 'http', port: 'nope' }] },
  })
  t.equal(res.json().error, 'PLX_SERVICE_BAD_CHECK')
  res = await app.inject({
    method: 'PUT',
    url: '/v1/services/web',
    payload: { checks: [{ name: 'c', type: 'exec' }] },
  })
  t.equal(res.json().error, 'PLX_SERVICE_BAD_CHECK')
  res = await app.inject({
    method: 'PUT',
    url: '/v1/endpoints/nothere/register',
    payload: { service: 'web' },
  })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_ENDPOINT_NOT_FOUND')
})

t.test('register with a TTL: the endpoint drops out unless refreshed', async (t) => {
  const { app, clock, endpoint } = await setup(t)
  await endpoint('cccc3333', '10.244.1.4')
  const register = () =>
    app.inject({
      method: 'PUT',
      url: '/v1/endpoints/ctr-cccc/register',
      payload: { service: 'db', tags: ['primary'], ttlSeconds: 10 },
    })
  let res = await register()
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().endpointKey.split('/')[2], 'cccc3333')
  t.ok(res.json().expiresAt)
  const total = async () =>
    (await app.inject({ method: 'GET', url: '/v1/services' }))
      .json()
      .find((s: { name: string }) => s.name === 'db')?.total ?? 0
  t.equal(await total(), 1)
  clock.t += 8000
  await register() // refresh
  clock.t += 8000
  t.equal(await total(), 1, 'refreshed in time')
  clock.t += 3000
  t.equal(await total(), 0, 'lapsed')
  await register()
  res = await app.inject({ method: 'DELETE', url: '/v1/endpoints/cccc3333/register?service=db' })
  t.equal(res.statusCode, 204)
  t.equal(await total(), 0, 'deregistered')
  res = await app.inject({ method: 'DELETE', url: '/v1/endpoints/cccc3333/register?service=db' })
  t.equal(res.json().error, 'PLX_SERVICE_NOT_REGISTERED')
})
