import '../../../src/lib/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { Libp2pTransport } from '../../../src/cluster/libp2p-transport.js'
import { clusterMetrics } from '../../../src/cluster/metrics.js'
import { Replicator } from '../../../src/cluster/replicator.js'
import { realScheduler } from '../../../src/cluster/transport.js'
import { newClusterKey, parseClusterKey } from '../../../src/lib/cluster-key.js'
import { PlexusError } from '../../../src/lib/errors.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { LocalStore } from '../../../src/store/store.js'

const logger = pino({ level: process.env.PLEXUS_TEST_LOG ?? 'silent' })

async function host(psk: Uint8Array) {
  const privateKey = await generateKeyPair('Ed25519')
  const metrics = new Metrics()
  const store = new LocalStore({ signer: createSigner(privateKey), verify: verifyRecordSignature, metrics })
  const transport = await Libp2pTransport.create({
    privateKey,
    psk,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    logger,
    metrics: clusterMetrics(metrics),
  })
  const replicator = new Replicator(
    store,
    transport,
    realScheduler,
    Math.random,
    {
      syncIntervalMs: 500,
      requestTimeoutMs: 2000,
    },
    clusterMetrics(metrics),
    logger,
  )
  replicator.start()
  await transport.start()
  return { store, transport, metrics, replicator }
}

const REFUSED = 'plexus_cluster_connections_refused_total'

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** a host with the cluster key psk, stopped when the test ends */
async function member(t: Test, psk: Uint8Array): Promise<Awaited<ReturnType<typeof host>>> {
  const h = await host(psk)
  t.teardown(async () => {
    h.replicator.stop()
    await h.transport.stop()
  })
  return h
}

t.test('two hosts on loopback: gossip, pull on connect, wrong key refused on both sides', async (t) => {
  const psk = parseClusterKey(newClusterKey(), 'test')
  const a = await member(t, psk)
  const b = await member(t, psk)
  await a.store.put('before/connect', 1)
  const addr = a.transport.multiaddrs()[0] as string
  // dial without /p2p/<id>, as bootstrap entries may be written
  const reached = await b.transport.dial(addr.replace(/\/p2p\/.*$/, ''), 5000)
  t.equal(reached, a.transport.self)
  await until('pull on connect', () => b.store.get('before/connect') !== undefined)
  // gossipsub needs a heartbeat to graft the mesh; the pull/digest path covers the gap
  await a.store.put('after/connect', 2)
  await until('gossip or digest', () => b.store.get('after/connect') !== undefined)
  t.equal(b.store.get('after/connect')?.value, 2, 'a to b')
  await b.store.put('from/b', 3)
  await until('b to a', () => a.store.get('from/b') !== undefined)
  t.equal(a.store.get('from/b')?.value, 3, 'b to a')

  const evil = await member(t, parseClusterKey(newClusterKey(), 'other'))
  await t.rejects(evil.transport.dial(addr, 3000))
  await until(
    'refusal counted on both sides',
    async () => (await a.metrics.value(REFUSED)) > 0 && (await evil.metrics.value(REFUSED)) > 0,
  )
  t.ok(
    a.transport.refusals().some((r) => r.kind === 'key-mismatch' && r.direction === 'inbound'),
    'the refusing host remembers when and from where (plexctl doctor)',
  )
  t.ok(
    evil.transport
      .refusals()
      .some((r) => r.kind === 'key-mismatch' && r.direction === 'outbound' && r.remote === addr),
    'and so does the dialer, with the address it dialed',
  )
  t.equal(evil.store.get('before/connect'), undefined)
})

t.test('inspect protocol: an answer, a refusal with its code, a handler too slow is a timeout', async (t) => {
  const psk = parseClusterKey(newClusterKey(), 'test')
  const a = await member(t, psk)
  const b = await member(t, psk)
  await b.transport.dial(a.transport.multiaddrs()[0] as string, 5000)
  let asked: { from: string; q: unknown } | undefined
  a.transport.serveInspect(async (from, q) => {
    asked = { from, q }
    const op = (q as { op: string }).op
    if (op === 'refuse') throw new PlexusError('PLX_DIAG_UNKNOWN_HOST', 'no such host')
    if (op === 'hang') await new Promise((r) => setTimeout(r, 3000))
    return { echo: q }
  })
  t.same(await b.transport.inspect(a.transport.self, { op: 'hi', n: 1 }, 2000), { echo: { op: 'hi', n: 1 } })
  t.equal(asked?.from, b.transport.self, 'the handler learns who asked')
  await t.rejects(b.transport.inspect(a.transport.self, { op: 'refuse' }, 2000), {
    code: 'PLX_DIAG_UNKNOWN_HOST',
  })
  const started = Date.now()
  await t.rejects(b.transport.inspect(a.transport.self, { op: 'hang' }, 500), { code: 'PLX_INSPECT_TIMEOUT' })
  t.ok(Date.now() - started < 1500, `timed out after ${Date.now() - started} ms, not the handler's 3 s`)
  await t.rejects(
    a.transport.inspect(b.transport.self, { op: 'hi' }, 2000),
    { code: 'PLX_INSPECT_UNAVAILABLE' },
    'no handler on b',
  )
})
