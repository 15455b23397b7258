// PortService against the real store, with the datapath as a recorder of
// the sections publishedPortRules renders from the records when a pass runs
// (the kernel side is covered by test/integration/ports.test.ts).
import { pino } from 'pino'
import t, { type Test } from 'tap'
import type { AgentComponents } from '../../../src/agent/components.js'
import { defaultConfig } from '../../../src/agent/config.js'
import { buildApp } from '../../../src/api/app.js'
import type { Section } from '../../../src/datapath/firewall/model.js'
import { hostSockets } from '../../../src/datapath/sockets.js'
import { PlexusError } from '../../../src/lib/errors.js'
import { publishedPortRules } from '../../../src/ports/publish.js'
import { PortService } from '../../../src/ports/publish-service.js'
import type { EndpointValue } from '../../../src/store/records.js'
import type { JsonValue } from '../../../src/store/types.js'
import { endpointValue } from '../../helpers/records.js'
import { newStore } from '../store/helpers.js'

// above the kernel's ephemeral range, so the test host's own sockets do not get in the way
const RANGE: [number, number] = [61010, 61012]

async function setup(t: Test) {
  const { store, metrics } = await newStore()
  const sections: Section[] = []
  /** a datapath pass: the `ports` section as the provider renders it from this host's records */
  const pass = () =>
    sections.push(
      publishedPortRules({
        subnet: '10.244.1.0/24',
        bridge: 'plexus0',
        endpoints: store.list(`endpoints/${store.self}/`),
      }).section,
    )
  const datapath = {
    fail: false,
    sockets: hostSockets,
    async converged(_index: number) {
      if (datapath.fail) throw new PlexusError('PLX_FIREWALL_FAILED', 'firewall rules not applied: boom')
      pass()
    },
  }
  const config = { ...defaultConfig(), name: 'h1', ports: { range: RANGE } }
  const lease = { current: () => ({ subnet: '10.244.1.0/24' }) }
  const ports = new PortService({
    config,
    logger: pino({ level: 'silent' }),
    metrics,
    peerId: store.self,
    store,
    lease: lease as unknown as AgentComponents['lease'] & object,
    datapath,
  })
  await ports.start()
  t.teardown(() => ports.stop())
  const endpoint = (name: string, ipv4: string, published?: EndpointValue['published']) => {
    const value = endpointValue(name, ipv4, {
      hostVeth: `plxtest${name}`,
      createdAt: new Date().toISOString(),
      ...(published ? { published } : {}),
    })
    return { key: `endpoints/${store.self}/${value.containerId}/eth0`, value }
  }
  const last = () => sections.at(-1)?.rules.map((r) => r.id) ?? []
  return { store, ports, datapath, sections, endpoint, last, config, metrics, pass }
}

t.test('concurrent ADDs with hostPort 0 get distinct ports; the range runs out cleanly', async (t) => {
  const { store, ports, endpoint, last, pass } = await setup(t)
  const eps = ['a', 'b', 'c'].map((n, i) =>
    endpoint(n, `10.244.1.${i + 2}`, [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }]),
  )
  const got = await Promise.all(eps.map((e) => ports.reserve(e.key, e.value)))
  t.same(got.map((p) => p[0]?.hostPort).sort(), [61010, 61011, 61012])
  for (const [i, e] of eps.entries())
    await store.put(e.key, { ...e.value, published: got[i] } as unknown as JsonValue)
  pass()
  t.equal(last().filter((id) => id.endsWith('-pre')).length, 3, 'rules rendered from the three records')
  const d = endpoint('d', '10.244.1.9', [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }])
  await t.rejects(ports.reserve(d.key, d.value), { code: 'PLX_PORTS_EXHAUSTED' })
  // UDP is a separate space
  const u = endpoint('u', '10.244.1.10', [{ hostPort: 0, containerPort: 53, protocol: 'udp' }])
  t.equal((await ports.reserve(u.key, u.value))[0]?.protocol, 'udp')
})

t.test('rules follow the records: written, then deleted (CNI DEL)', async (t) => {
  const { store, ports, endpoint, last, pass } = await setup(t)
  const web = endpoint('web', '10.244.1.5', [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }])
  web.value.published = await ports.reserve(web.key, web.value)
  await store.put(web.key, web.value as unknown as JsonValue)
  pass()
  t.ok(last().includes('tcp-18080-pre'))
  const other = endpoint('other', '10.244.1.6', [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }])
  await t.rejects(ports.reserve(other.key, other.value), {
    code: 'PLX_PORTS_CONFLICT',
    message: /already taken by container "web"/,
  })
  pass()
  t.ok(last().includes('tcp-18080-pre'), 'the refusal changed nothing')
  await store.delete(web.key)
  pass()
  t.same(last(), [], 'no rule once the record is gone')
  t.same(ports.rows(), [])
})

t.test('a firewall failure leaves nothing admitted', async (t) => {
  const { store, ports, datapath, endpoint, last, pass } = await setup(t)
  const web = endpoint('web', '10.244.1.5')
  await store.put(web.key, web.value as unknown as JsonValue)
  datapath.fail = true
  await t.rejects(ports.publish('web', { hostPort: 18080, containerPort: 80, protocol: 'tcp' }), {
    code: 'PLX_FIREWALL_FAILED',
  })
  datapath.fail = false
  t.equal(
    (store.get(web.key)?.value as unknown as EndpointValue | undefined)?.published,
    undefined,
    'the record is back',
  )
  pass()
  t.same(last(), [], 'the refused mapping did not stay')
  // and the port is free for the next one
  const next = endpoint('next', '10.244.1.6', [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }])
  t.same(await ports.reserve(next.key, next.value), [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }])
})

t.test('API: publish, conflicts and bad input with reasons, list, unpublish', async (t) => {
  const { store, ports, endpoint, metrics } = await setup(t)
  const web = endpoint('web', '10.244.1.5')
  await store.put(web.key, web.value as unknown as JsonValue)
  const app = await buildApp({
    config: defaultConfig(),
    logger: pino({ level: 'silent' }),
    metrics,
    store,
    peerId: store.self,
    ports,
  } as unknown as AgentComponents)
  t.teardown(() => app.close())
  const published = () => (store.get(web.key)?.value as unknown as EndpointValue | undefined)?.published
  const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/ports', payload })

  let res = await post({ container: 'web', hostPort: 18080, containerPort: 80, hostIp: '127.0.0.1' })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), {
    container: 'web',
    hostAddress: '127.0.0.1',
    hostPort: 18080,
    protocol: 'tcp',
    local: true,
  })
  t.match(published(), [{ hostPort: 18080, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1' }])

  res = await post({ container: 'web', hostPort: 18080, containerPort: 81 })
  t.equal(res.statusCode, 409)
  t.match(res.json(), { error: 'PLX_PORTS_CONFLICT', message: /127\.0\.0\.1:18080|0\.0\.0\.0:18080/ })
  res = await post({ container: 'web', hostPort: 99999, containerPort: 80, protocol: 'sctp' })
  t.equal(res.statusCode, 400)
  t.match(res.json(), {
    error: 'PLX_PORTS_INVALID',
    message: /host port 99999 is outside 1-65535 .*; protocol "sctp" is not tcp or udp/,
  })
  res = await post({ container: 'web', hostPort: '80x', containerPort: 80 })
  t.equal(res.statusCode, 400, 'the schema refuses a non-integer')
  res = await post({ container: 'nosuch', hostPort: 18081, containerPort: 80 })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_PORTS_UNKNOWN_CONTAINER')

  res = await app.inject({ method: 'GET', url: '/v1/ports?local=true' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().length, 1)

  res = await app.inject({ method: 'DELETE', url: '/v1/ports/web/18080?protocol=udp' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error, 'PLX_PORTS_NOT_PUBLISHED')
  res = await app.inject({ method: 'DELETE', url: '/v1/ports/web/18080' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), {
    removed: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1' }],
  })
  t.equal(published(), undefined)
})
