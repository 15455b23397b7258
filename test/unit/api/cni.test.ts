import t from 'tap'
import { buildApp } from '../../../src/api/app.js'
import type { EndpointService } from '../../../src/endpoints/service.js'
import { PlexusError } from '../../../src/lib/errors.js'
import { testComponents } from '../../helpers/components.js'

const result = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'plx0', mtu: 1450 },
    { name: 'eth0', sandbox: '/run/netns/x', mtu: 1450 },
  ],
  ips: [{ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
  dns: { nameservers: ['10.244.1.1'], search: ['svc.plexus.internal'], options: ['ndots:1'] },
}

// Only the calls the routes make; the real service is covered by the netns integration tests.
const fake = {
  attach: async (req: { containerId: string }) => {
    if (req.containerId === 'full')
      throw new PlexusError('PLX_IPAM_EXHAUSTED', 'no free address in 10.244.1.0/24')
    return result
  },
  detach: async () => undefined,
  check: async () => {
    throw new PlexusError('PLX_ENDPOINTS_CHECK_FAILED', 'CHECK c/eth0: MTU 1400, want 1450', {
      problems: ['MTU 1400, want 1450', 'no default route'],
    })
  },
  gc: async () => ({ released: [{ containerId: 'old', ifname: 'eth0' }] }),
  status: async () => {
    throw new PlexusError('PLX_ENDPOINTS_UNAVAILABLE', 'this host holds no subnet lease (settling)')
  },
} as unknown as EndpointService

async function app(endpoints?: EndpointService) {
  const a = await buildApp((await testComponents(endpoints ? { endpoints } : {})).deps)
  return a
}

const add = { containerId: 'c1', ifname: 'eth0', netns: '/run/netns/c1', network: 'plexus', labels: {} }

t.test('ADD answers the 1.1.0 result', async (t) => {
  const a = await app(fake)
  t.teardown(() => a.close())
  const res = await a.inject({ method: 'POST', url: '/v1/cni/add', payload: add })
  t.equal(res.statusCode, 200)
  t.same(res.json(), result)
})

t.test('bad bodies are refused with CNI code 7', async (t) => {
  const a = await app(fake)
  t.teardown(() => a.close())
  for (const payload of [
    { ...add, ifname: 'much-too-long-name' },
    { ...add, netns: 'relative' },
    { ...add, extra: 1 },
    { ...add, mac: 'zz' },
  ]) {
    const res = await a.inject({ method: 'POST', url: '/v1/cni/add', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().cni.code, 7)
  }
})

t.test('agent errors carry their CNI error', async (t) => {
  const a = await app(fake)
  t.teardown(() => a.close())
  const full = await a.inject({
    method: 'POST',
    url: '/v1/cni/add',
    payload: { ...add, containerId: 'full' },
  })
  t.equal(full.statusCode, 400)
  t.match(full.json(), { error: 'PLX_IPAM_EXHAUSTED', cni: { code: 100, msg: /no free address/ } })
  const check = await a.inject({
    method: 'POST',
    url: '/v1/cni/check',
    payload: { containerId: 'c', ifname: 'eth0', netns: '/run/netns/c' },
  })
  t.match(check.json(), { cni: { code: 110, details: 'MTU 1400, want 1450; no default route' } })
  const status = await a.inject({ method: 'GET', url: '/v1/cni/status' })
  t.equal(status.statusCode, 503)
  t.equal(status.json().cni.code, 50)
  const gc = await a.inject({
    method: 'POST',
    url: '/v1/cni/gc',
    payload: { network: 'plexus', validAttachments: [] },
  })
  t.same(gc.json(), { released: [{ containerId: 'old', ifname: 'eth0' }] })
  const del = await a.inject({
    method: 'POST',
    url: '/v1/cni/del',
    payload: { containerId: 'c', ifname: 'eth0', netns: '' },
  })
  t.same(del.json(), { ok: true })
})

t.test('without the endpoint service: try again later (11)', async (t) => {
  const a = await app()
  t.teardown(() => a.close())
  const res = await a.inject({ method: 'POST', url: '/v1/cni/add', payload: add })
  t.equal(res.statusCode, 503)
  t.equal(res.json().cni.code, 11)
})
