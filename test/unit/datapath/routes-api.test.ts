import t, { type Test } from 'tap'
import type { DatapathStatus } from '../../../src/datapath/reconciler.js'
import type { DatapathComponent } from '../../../src/datapath/service.js'
import { testApp } from '../../helpers/components.js'

const status: DatapathStatus = {
  state: 'degraded',
  reason: 'some remote leases are refused',
  backend: 'host-gw',
  subnet: '10.244.1.0/24',
  mtu: 1500,
  firewall: { backend: 'iptables', variant: 'nf_tables' },
  routes: [
    {
      dst: '10.244.2.0/24',
      gateway: '192.0.2.12',
      dev: 'eth0',
      onlink: false,
      host: 'h2',
      mode: 'direct',
      programmed: true,
    },
  ],
  remotes: [
    {
      peerId: 'p2',
      host: 'h2',
      subnet: '10.244.2.0/24',
      publicIp: '192.0.2.12',
      mode: 'direct',
      programmed: true,
    },
    {
      peerId: 'p9',
      host: 'far',
      subnet: '10.244.9.0/24',
      publicIp: '198.51.100.7',
      mode: 'refused',
      reason: 'not on this segment',
      programmed: false,
    },
  ],
  repairs: { total: 2, route: 1, firewall: 1 },
  passes: 7,
  lastPass: { at: '2026-11-23T20:00:00.000Z', durationMs: 12, changes: 1, repairs: 1, failed: [] },
}

async function app(t: Test, datapath?: DatapathComponent) {
  return (await testApp(t, datapath ? { datapath } : {})).app
}

t.test('GET /v1/routes returns the datapath status through its schema, nothing dropped', async (t) => {
  const datapath: DatapathComponent = {
    status: () => status,
    reconcile: async () => {},
    ensureBridge: async () => {},
    converged: async () => {},
    explain: () => [],
    firewallView: () => Promise.reject(new Error('not asked by /v1/routes')),
  }
  const res = await (await app(t, datapath)).inject({ method: 'GET', url: '/v1/routes' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), status)
})

t.test('GET /v1/routes without a datapath says so', async (t) => {
  const res = await (await app(t)).inject({ method: 'GET', url: '/v1/routes' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { state: 'disabled', routes: [], repairs: {} })
})
