import '../../../src/lib/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import t from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { Libp2pTransport } from '../../../src/cluster/libp2p-transport.js'
import { clusterMetrics } from '../../../src/cluster/metrics.js'
import { Replicator } from '../../../src/cluster/replicator.js'
import { realScheduler } from '../../../src/cluster/transport.js'
import { newClusterKey, parseClusterKey } from '../../../src/lib/cluster-key.js'
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

t.test('two hosts on loopback: gossip, pull on connect, wrong key refused on both sides', async (t) => {
  const psk = parseClusterKey(newClusterKey(), 'test')
  const a = await host(psk)
  const b = await host(psk)
  t.teardown(async () => {
    for (const h of [a, b]) {
      h.replicator.stop()
      await h.transport.stop()
    }
  })
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

  const evil = await host(parseClusterKey(newClusterKey(), 'other'))
  t.teardown(async () => {
    evil.replicator.stop()
    await evil.transport.stop()
  })
  await t.rejects(evil.transport.dial(addr, 3000))
  await until(
    'refusal counted on both sides',
    async () => (await a.metrics.value(REFUSED)) > 0 && (await evil.metrics.value(REFUSED)) > 0,
  )
  t.equal(evil.store.get('before/connect'), undefined)
})
