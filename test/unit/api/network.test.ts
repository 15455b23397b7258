import { generateKeyPair } from '@libp2p/crypto/keys'
import t, { type Test } from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { LocalStore } from '../../../src/store/store.js'
import { testApp } from '../../helpers/components.js'

async function setup(t: Test) {
  return testApp(t)
}

t.test('PUT then GET /v1/network', async (t) => {
  const { app, store } = await setup(t)
  let res = await app.inject({ method: 'GET', url: '/v1/network' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_IPAM_NO_NETWORK')

  res = await app.inject({
    method: 'PUT',
    url: '/v1/network',
    payload: { Network: '10.50.0.0/16', Backend: { Type: 'host-gw' } },
  })
  t.equal(res.statusCode, 200)
  t.match(res.json(), {
    changed: true,
    config: { Network: '10.50.0.0/16', SubnetLen: 24, SubnetMin: '10.50.1.0', Backend: { Type: 'host-gw' } },
  })
  t.match(store.get('config/network')?.value, { Network: '10.50.0.0/16' })

  res = await app.inject({ method: 'GET', url: '/v1/network' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { config: { Network: '10.50.0.0/16', IPMasq: true }, setBy: store.self })

  res = await app.inject({
    method: 'PUT',
    url: '/v1/network',
    payload: { Network: '10.50.0.0/16', Backend: { Type: 'host-gw' } },
  })
  t.match(res.json(), { changed: false }, 'the same config again is a no-op')
})

t.test('a different config needs force; bad input is a 400 with the reason and writes nothing', async (t) => {
  const { app, store } = await setup(t)
  await app.inject({ method: 'PUT', url: '/v1/network', payload: {} })
  const index = store.modifyIndex('config/network')
  let res = await app.inject({ method: 'PUT', url: '/v1/network', payload: { Network: '10.60.0.0/16' } })
  t.equal(res.statusCode, 409)
  t.equal(res.json().error, 'PLX_IPAM_NETWORK_EXISTS')
  res = await app.inject({
    method: 'PUT',
    url: '/v1/network',
    payload: { SubnetMin: '10.244.9.0', SubnetMax: '10.244.2.0' },
  })
  t.equal(res.statusCode, 400)
  t.match(res.json(), {
    error: 'PLX_IPAM_CONFIG_INVALID',
    message: /SubnetMin 10\.244\.9\.0 is above SubnetMax/,
  })
  res = await app.inject({
    method: 'PUT',
    url: '/v1/network?force=true',
    payload: { Backend: { Type: 'ipip' } },
  })
  t.equal(res.statusCode, 400)
  t.match(res.json().message, /unknown backend type "ipip"/)
  res = await app.inject({ method: 'PUT', url: '/v1/network', payload: { backend: {} } })
  t.match(res.json().message, /backend is not a known field \(did you mean "Backend"\?\)/)
  t.equal(store.modifyIndex('config/network'), index, 'nothing was written')
  res = await app.inject({
    method: 'PUT',
    url: '/v1/network?force=true',
    payload: { Network: '10.60.0.0/16' },
  })
  t.equal(res.statusCode, 200)
  t.match(store.get('config/network')?.value, { Network: '10.60.0.0/16' })
})

t.test(
  'POST /v1/network/rotate-keys: a new generation each time, only over wireguard (cluster or bridge network)',
  async (t) => {
    const { app, store } = await setup(t)
    const rotate = () => app.inject({ method: 'POST', url: '/v1/network/rotate-keys' })
    let res = await rotate()
    t.equal(res.statusCode, 404)
    t.equal(res.json().error, 'PLX_IPAM_NO_NETWORK')
    await app.inject({ method: 'PUT', url: '/v1/network', payload: {} })
    res = await rotate()
    t.equal(res.statusCode, 409)
    t.match(res.json(), { error: 'PLX_WG_NOT_IN_USE', message: /backend is vxlan/ })
    t.equal(store.get('config/wireguard-rotation'), undefined, 'nothing was written')
    // a wireguard bridge network beside a vxlan cluster network has keys to rotate too
    res = await app.inject({
      method: 'POST',
      url: '/v1/networks',
      payload: { name: 'green', driver: 'bridge', cidr: '10.90.0.0/16', backend: 'wireguard' },
    })
    t.equal(res.statusCode, 200, res.body)
    res = await rotate()
    t.equal(res.statusCode, 200)
    t.match(res.json(), { generation: 1, requestedAt: Number })
    await app.inject({
      method: 'PUT',
      url: '/v1/network?force=true',
      payload: { Backend: { Type: 'wireguard' } },
    })
    res = await rotate()
    t.equal(res.statusCode, 200)
    t.equal(res.json().generation, 2)
    res = await rotate()
    t.equal(res.json().generation, 3)
    t.same(store.get('config/wireguard-rotation')?.value, res.json(), 'the reply is the record')
  },
)

t.test('GET /v1/subnets lists valid leases and flags invalid ones', async (t) => {
  const { app, store } = await setup(t)
  let res = await app.inject({ method: 'GET', url: '/v1/subnets' })
  t.match(res.json(), { network: null, leases: [], invalid: [], self: { state: 'disabled' } })
  await store.put('config/network', { Network: '10.70.0.0/16' })
  await store.put(
    `leases/${store.self}`,
    {
      subnet: '10.70.3.0/24',
      publicIp: '192.0.2.11',
      hostname: 'h1',
      backend: { type: 'vxlan', vtepMac: '02:00:00:00:00:01' },
      claimedAt: Date.now(),
    },
    { ttlMs: 60_000 },
  )
  const other = new LocalStore({
    signer: createSigner(await generateKeyPair('Ed25519')),
    verify: verifyRecordSignature,
  })
  await other.put(
    `leases/${other.self}`,
    {
      subnet: '10.70.3.0/24',
      publicIp: '10.70.9.9',
      hostname: 'h2',
      backend: { type: 'vxlan' },
      claimedAt: 1,
    },
    { ttlMs: 60_000 },
  )
  store.merge(other.recordsAfter(new Map()))
  res = await app.inject({ method: 'GET', url: '/v1/subnets' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body.leases, [
    {
      subnet: '10.70.3.0/24',
      host: 'h1',
      publicIp: '192.0.2.11',
      backend: 'vxlan',
      vtepMac: '02:00:00:00:00:01',
      self: true,
    },
  ])
  t.ok(body.leases[0].expiresInSeconds > 55 && body.leases[0].expiresInSeconds <= 60)
  t.match(body.invalid, [{ owner: other.self, kind: 'public-ip-in-network', subnet: '10.70.3.0/24' }])
})
