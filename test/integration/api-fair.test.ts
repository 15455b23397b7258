// API connections shared fairly (issue 18): a client that opens hundreds of
// connections and drips a request into each, a byte a second, holds at most
// its per-client share, each of its connections is closed on the request
// deadline however long it keeps dripping, and another client's request is
// served meanwhile. On the unix sockets a client is a socket file (an extra
// socket is what a runtime's namespace gets); on the TCP metrics listener it is
// the source address (loopback addresses in a throwaway namespace).
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { listenMetrics } from '../../src/api/metrics-listener.js'
import { type ApiLimits, DEFAULT_API_LIMITS, listenUnix } from '../../src/api/server.js'
import { testApp } from '../helpers/components.js'
import { drip } from '../helpers/drip.js'
import { ownNetns } from '../helpers/own-netns.js'

await ownNetns(import.meta.url, 'plxapifair')

const ATTACK_CONNECTIONS = 300
// the shipped bounds, with a short deadline so the test need not wait 10 s for it
const LIMITS: ApiLimits = { ...DEFAULT_API_LIMITS, requestTimeoutMs: 3000 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const REQUEST = Buffer.from('GET /v1/status HTTP/1.1\r\nHost: plexus\r\nAccept: application/json\r\n\r\n')

/** GET path: the status code and the time it took (0: no answer, the connection failed) */
function get(
  target: { socketPath: string } | { host: string; port: number; localAddress: string },
  path: string,
): Promise<{ status: number; ms: number; body: string }> {
  const started = Date.now()
  return new Promise((resolve) => {
    const req = request({ ...target, path, agent: false, timeout: 20_000 }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started, body }))
    })
    req.on('error', () => resolve({ status: 0, ms: Date.now() - started, body: '' }))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

/** The attack and the checks, for one listener. */
async function heldToItsShare(
  t: Test,
  attack: () => Socket,
  victim: () => Promise<{ status: number }>,
): Promise<void> {
  const drips = await Promise.all(Array.from({ length: ATTACK_CONNECTIONS }, () => drip(attack, REQUEST)))
  t.teardown(() => {
    for (const d of drips) d.sock.destroy()
  })
  await sleep(1500)
  const open = drips.filter((d) => d.closedAt === undefined)
  t.ok(
    open.length <= LIMITS.maxPerClient,
    `the dripping client holds ${open.length}, at most its ${LIMITS.maxPerClient}`,
  )
  t.ok(open.length > 0, 'its first connections were accepted')
  t.equal((await victim()).status, 200, "another client's request is served meanwhile")

  await sleep(LIMITS.requestTimeoutMs + 1500)
  t.equal(
    open.filter((d) => d.closedAt === undefined).length,
    0,
    'no dripping connection outlives the request deadline',
  )
  for (const d of open) {
    const held = (d.closedAt ?? Date.now()) - d.openedAt
    if (held > LIMITS.requestTimeoutMs + 1000) t.fail(`a drip connection was held ${held} ms`)
  }
  t.ok(Math.max(...open.map((d) => d.sent)) >= 3, 'the client kept dripping while it was held')
}

t.test('unix sockets: one socket file dripping cannot take the API from another', async (t) => {
  const { app, store } = await testApp(t)
  const dir = await mkdtemp(join(tmpdir(), 'plx-api-fair-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const primary = join(dir, 'plexusd.sock')
  const runtime = join(dir, 'runtime.sock')
  const close = await listenUnix(app, [primary, runtime], LIMITS)
  t.teardown(close)
  // every socket served later (the application API rebinds as the gateway moves) shares the app's
  // one deadline listener: a listener per socket piled up past Node's warning after ten rebinds
  const listeners = app.server.listenerCount('request')
  for (let i = 0; i < 12; i++) await (await listenUnix(app, [join(dir, `extra-${i}.sock`)], LIMITS))()
  t.equal(app.server.listenerCount('request'), listeners, 'serving more sockets adds no request listener')

  await heldToItsShare(
    t,
    () => connect(runtime),
    () => get({ socketPath: primary }, '/v1/status'),
  )

  // a blocking read outlives the deadline: the wait is the agent's, not the client's
  await store.put('k', 1)
  const waited = await get({ socketPath: primary }, `/v1/kv/k?index=${store.index}&wait=5s`)
  t.equal(waited.status, 200, 'a KV read blocked for 5 s is answered')
  t.ok(
    waited.ms >= 4500,
    `it waited its 5 s (${waited.ms} ms) past the ${LIMITS.requestTimeoutMs} ms deadline`,
  )
})

t.test('TCP metrics listener: one address dripping cannot take it from another', async (t) => {
  const { deps } = await testApp(t)
  const port = 9464
  const close = await listenMetrics(deps.metrics, `127.0.0.1:${port}`, pino({ level: 'silent' }), LIMITS)
  t.teardown(close)
  await heldToItsShare(
    t,
    () => connect({ host: '127.0.0.1', port, localAddress: '127.0.0.10' }),
    () => get({ host: '127.0.0.1', port, localAddress: '127.0.0.20' }, '/metrics'),
  )
  const text = (await get({ host: '127.0.0.1', port, localAddress: '127.0.0.20' }, '/metrics')).body
  const refused = /plexus_api_connections_total\{listener="metrics",outcome="refused"\} (\d+)/.exec(text)
  t.ok(Number(refused?.[1]) >= ATTACK_CONNECTIONS - LIMITS.maxPerClient, `refusals counted: ${refused?.[1]}`)
  const timedOut = /plexus_api_connections_total\{listener="metrics",outcome="timedOut"\} (\d+)/.exec(text)
  t.ok(Number(timedOut?.[1]) > 0, `deadlines counted: ${timedOut?.[1]}`)
})
