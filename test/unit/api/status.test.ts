import t from 'tap'
import { defaultConfig } from '../../../src/agent/config.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { storeMetrics } from '../../../src/store/metrics.js'
import { testApp } from '../../helpers/components.js'

async function status(t: Parameters<typeof testApp>[0]) {
  const metrics = new Metrics()
  storeMetrics(metrics).rejected.inc({ reason: 'signature' }, 2)
  return testApp(t, {
    metrics,
    startedAt: new Date(Date.now() - 5000),
    version: '9.9.9',
    config: { ...defaultConfig(), name: 'h7' },
  })
}

t.test('GET /v1/status reports the agent and its metrics', async (t) => {
  const { app, deps } = await status(t)
  const res = await app.inject({ method: 'GET', url: '/v1/status' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.name, 'h7')
  t.equal(body.version, '9.9.9')
  t.equal(body.pid, process.pid)
  t.ok(body.uptimeSeconds >= 5)
  t.equal(body.metrics['plexus_store_records_rejected_total{reason="signature"}'], 2)
  t.equal(body.peerId, deps.peerId)
  const m = body.memory
  t.ok(m.rssBytes > m.heapUsedBytes && m.heapUsedBytes > 0 && m.externalBytes > 0, 'memory of this process')
})

t.test('unknown routes get a JSON 404 with a stable code', async (t) => {
  const { app } = await status(t)
  const res = await app.inject({ method: 'GET', url: '/v1/nope' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_API_NOT_FOUND')
})
