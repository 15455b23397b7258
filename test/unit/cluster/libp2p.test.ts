import '../../../src/lib/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { Libp2pTransport } from '../../../src/cluster/libp2p-transport.js'
import { clusterMetrics } from '../../../src/cluster/metrics.js'
import { PROBE_PROTOCOL } from '../../../src/cluster/probe.js'
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

/** two members of one cluster, a connected to b */
async function connectedPair(t: Test) {
  const psk = parseClusterKey(newClusterKey(), 'test')
  const a = await member(t, psk)
  const b = await member(t, psk)
  await a.transport.dial(b.transport.multiaddrs()[0] as string, 5000)
  return { a, b }
}

/** the open /plexus/probe/1 streams of from's connections to peer */
function probeStreams(from: Libp2pTransport, peer: string): number {
  return from.node
    .getConnections(peerIdFromString(peer))
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === PROBE_PROTOCOL && s.status === 'open').length
}

t.test(
  'probes: one stream per peer, a new one after the connection closes, libp2p ping to an earlier release',
  async (t) => {
    const { a, b } = await connectedPair(t)
    const rtts = await Promise.all(Array.from({ length: 5 }, () => a.transport.ping(b.transport.self, 2000)))
    for (let i = 0; i < 20; i++) rtts.push(await a.transport.ping(b.transport.self, 2000))
    t.ok(
      rtts.every((r) => r >= 0 && r < 2000),
      `25 probes answered, 5 of them at once (${rtts.map((r) => r.toFixed(2)).join(' ')} ms)`,
    )
    t.equal(probeStreams(a.transport, b.transport.self), 1, 'all on one stream')
    t.ok(
      rtts.some((r) => !Number.isInteger(r)),
      'round trips finer than a millisecond (libp2p ping counts whole ms)',
    )

    a.transport.reset(b.transport.self)
    await until('disconnected', () => !a.transport.isConnected(b.transport.self))
    t.ok(
      (await a.transport.ping(b.transport.self, 2000)) >= 0,
      'a probe after the connection closed dials again',
    )
    t.equal(probeStreams(a.transport, b.transport.self), 1, 'on a new stream')

    // an agent of an earlier release: no /plexus/probe/1
    await b.transport.node.unhandle(PROBE_PROTOCOL)
    a.transport.reset(b.transport.self)
    await until('disconnected', () => !a.transport.isConnected(b.transport.self))
    t.ok((await a.transport.ping(b.transport.self, 2000)) >= 0, 'answered by libp2p ping')
    t.ok((await a.transport.ping(b.transport.self, 2000)) >= 0, 'and again, without asking for the protocol')
    t.equal(probeStreams(a.transport, b.transport.self), 0, 'no probe stream')

    await b.transport.stop()
    await t.rejects(a.transport.ping(b.transport.self, 2000), 'a stopped peer fails the probe')
  },
)

t.test(
  'probes: frames split or joined are echoed whole; an unanswered probe times out, its late answer is ignored',
  async (t) => {
    const { a, b } = await connectedPair(t)

    const raw = await a.transport.node.dialProtocol(peerIdFromString(b.transport.self), PROBE_PROTOCOL)
    const echoed: number[] = []
    raw.addEventListener('message', (e) => echoed.push(...e.data.subarray()))
    const sent = Array.from({ length: 23 }, (_, i) => i + 1)
    raw.send(Uint8Array.from(sent.slice(0, 5)))
    raw.send(Uint8Array.from(sent.slice(5, 16)))
    await until('two frames back', () => echoed.length >= 16)
    t.same(echoed, sent.slice(0, 16), 'the 16 bytes of two frames, in order, after 5 + 11 bytes')
    raw.send(Uint8Array.from(sent.slice(16)))
    await new Promise((r) => setTimeout(r, 200))
    t.equal(echoed.length, 16, 'a part of a frame (7 bytes) is not answered')
    raw.abort(new Error('done'))

    // b reads its probes but answers late: the first probe times out, its answer comes after
    await b.transport.node.unhandle(PROBE_PROTOCOL)
    await b.transport.node.handle(PROBE_PROTOCOL, (stream) => {
      stream.addEventListener('message', (e) => {
        const frame = e.data.subarray()
        setTimeout(() => stream.status === 'open' && stream.send(frame), 600)
      })
    })
    const started = Date.now()
    await t.rejects(a.transport.ping(b.transport.self, 300), { name: 'TimeoutError' })
    t.ok(Date.now() - started < 550, 'timed out at its deadline')
    const rtt = await a.transport.ping(b.transport.self, 2000)
    t.ok(rtt >= 550, `the next probe is answered by its own frame (${rtt.toFixed(0)} ms), not the late one`)
    t.equal(probeStreams(a.transport, b.transport.self), 1, 'a timeout keeps the stream')
  },
)
