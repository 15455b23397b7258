import '../../../src/lib/polyfill.js'
import { createHash, randomBytes } from 'node:crypto'
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { byteStream, multiaddrConnectionPair } from '@libp2p/utils'
import t, { type Test } from 'tap'
import { clusterProtector, type ProtectorHooks, StreamXSalsa20 } from '../../../src/cluster/protector.js'
import { REFUSALS_KEPT, RefusalLog } from '../../../src/cluster/refusals.js'
import { newClusterKey, parseClusterKey } from '../../../src/lib/cluster-key.js'

// The known answer of NaCl's tests/stream.c: SHA-256 of the first 4 MiB of
// XSalsa20 keystream under this key and nonce.
const NACL_KEY = '1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389'
const NACL_NONCE = '69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37'
const NACL_SHA256 = '662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2'

t.test(
  'the stream cipher continues the keystream across chunks of any size (NaCl known answer)',
  async (t) => {
    const c = new StreamXSalsa20(Buffer.from(NACL_KEY, 'hex'), Buffer.from(NACL_NONCE, 'hex'))
    const hash = createHash('sha256')
    let left = 4 * 1024 * 1024
    // sizes that start inside a block, span several blocks, and land on boundaries
    const sizes = [1, 63, 64, 65, 7, 4096, 100_003, 129]
    for (let i = 0; left > 0; i++) {
      const n = Math.min(left, sizes[i % sizes.length] as number)
      hash.update(c.update(new Uint8Array(n)))
      left -= n
    }
    t.equal(hash.digest('hex'), NACL_SHA256)
  },
)

/** what the hooks reported, by name */
class Tally {
  private readonly n = new Map<string, number>()
  inc(name: string, by = 1): void {
    this.n.set(name, this.get(name) + by)
  }
  get(name: string): number {
    return this.n.get(name) ?? 0
  }
}

function hooks(counters: Tally): ProtectorHooks {
  return {
    refused: () => counters.inc('refused'),
    failed: () => counters.inc('failed'),
    ciphers: (d) => counters.inc('ciphers', d),
  }
}

async function protectPair(a: ConnectionProtector, b: ConnectionProtector) {
  const [outbound, inbound] = multiaddrConnectionPair()
  return Promise.allSettled([a.protect(outbound), b.protect(inbound)])
}

async function echoBothWays(t: Test, x: MessageStream, y: MessageStream) {
  const bx = byteStream(x)
  const by = byteStream(y)
  const ping = randomBytes(70_001)
  const pong = randomBytes(3)
  const [gotPing, gotPong] = await Promise.all([
    by.read({ bytes: ping.length }),
    bx.read({ bytes: pong.length }),
    bx.write(ping),
    by.write(pong),
  ])
  t.same(Buffer.from(gotPing.subarray()), ping, 'bytes arrive intact one way')
  t.same(Buffer.from(gotPong.subarray()), pong, 'and the other')
}

t.test('same key: both sides connect and carry data; closing releases both cipher pairs', async (t) => {
  const psk = parseClusterKey(newClusterKey(), 'test')
  const counters = new Tally()
  const p = clusterProtector(psk, hooks(counters))
  const [a, b] = await protectPair(p(), p())
  if (a.status !== 'fulfilled' || b.status !== 'fulfilled') throw new Error('handshake failed')
  t.equal(counters.get('ciphers'), 2, 'one cipher pair per side while open')
  await echoBothWays(t, a.value, b.value)
  await Promise.all([a.value.close(), b.value.close()])
  t.equal(counters.get('ciphers'), 0, 'released on close')
  t.equal(counters.get('refused') + counters.get('failed'), 0)
})

t.test(
  'what the layers above send in one turn goes out as one socket write, in order; a close sends what is left first',
  async (t) => {
    const psk = parseClusterKey(newClusterKey(), 'test')
    const counters = new Tally()
    const p = clusterProtector(psk, hooks(counters))
    const [outbound, inbound] = multiaddrConnectionPair()
    const writes: number[] = []
    const send = outbound.send.bind(outbound)
    outbound.send = (data) => {
      writes.push(data.byteLength)
      return send(data)
    }
    const [a, b] = await Promise.all([p().protect(outbound), p().protect(inbound)])
    writes.length = 0
    const frames = Array.from({ length: 5 }, (_, i) => randomBytes(100 + i))
    const total = frames.reduce((n, f) => n + f.length, 0)
    const reader = byteStream(b)
    const got = reader.read({ bytes: total })
    for (const f of frames) a.send(f)
    t.same(Buffer.from((await got).subarray()), Buffer.concat(frames), 'the bytes arrive intact and in order')
    t.same(writes, [total], 'five sends, one write')

    writes.length = 0
    const small = randomBytes(100)
    const big = randomBytes(200 * 1024)
    const gotBoth = reader.read({ bytes: small.length + big.length })
    a.send(small)
    t.same(writes, [], 'a small send waits for the end of the turn')
    a.send(big)
    t.same(writes, [small.length + big.length], 'past 64 KiB what is held goes at once, in the same turn')
    t.same(Buffer.from((await gotBoth).subarray()), Buffer.concat([small, big]), 'intact')

    const last = randomBytes(10)
    const gotLast = reader.read({ bytes: last.length })
    a.send(last)
    await a.close()
    t.same(Buffer.from((await gotLast).subarray()), last, 'bytes sent just before a close are delivered')
    await b.close()
    t.equal(counters.get('ciphers'), 0, 'released on close')
  },
)

t.test('wire-compatible with @libp2p/pnet (agents of earlier releases)', async (t) => {
  const psk = parseClusterKey(newClusterKey(), 'test')
  const counters = new Tally()
  const ours = clusterProtector(psk, hooks(counters))()
  const theirs = preSharedKey({ psk })()
  const magic = new TextEncoder().encode('plexus-cluster/1')
  const [outbound, inbound] = multiaddrConnectionPair()
  // earlier releases send the same magic after pnet's nonce exchange
  const [a, [old, seen]] = await Promise.all([
    ours.protect(outbound),
    theirs.protect(inbound).then(async (boxed) => {
      const bytes = byteStream(boxed)
      const [got] = await Promise.all([bytes.read({ bytes: magic.length }), bytes.write(magic)])
      return [bytes, got.subarray()] as const
    }),
  ])
  t.same(seen, magic, 'pnet decrypts our magic')
  await echoBothWays(t, a, old.unwrap())
})

t.test('different keys: refused on both sides, nothing left held', async (t) => {
  const counters = new Tally()
  const a = clusterProtector(parseClusterKey(newClusterKey(), 'a'), hooks(counters))
  const b = clusterProtector(parseClusterKey(newClusterKey(), 'b'), hooks(counters))
  const [x, y] = await protectPair(a(), b())
  t.equal(x.status, 'rejected')
  t.equal(y.status, 'rejected')
  t.match((x as PromiseRejectedResult).reason, { code: 'PLX_CLUSTER_KEY_MISMATCH' })
  t.equal(counters.get('refused'), 2)
  t.equal(counters.get('ciphers'), 0)
})

t.test(
  'an exception while delivering data closes that connection and is reported, never thrown',
  async (t) => {
    const psk = parseClusterKey(newClusterKey(), 'test')
    const counters = new Tally()
    const p = clusterProtector(psk, hooks(counters))
    const [a, b] = await protectPair(p(), p())
    if (a.status !== 'fulfilled' || b.status !== 'fulfilled') throw new Error('handshake failed')
    // the layer above fails while taking bytes: onData throws when the stream can no longer take them
    const receiver = b.value as MessageStream & { onData(d: Uint8Array): void }
    receiver.onData = () => {
      throw new Error('boom in the layer above')
    }
    a.value.send(new Uint8Array(10))
    const closed = (s: MessageStream) => s.status !== 'open'
    for (let i = 0; i < 50 && !(closed(receiver) && closed(a.value)); i++)
      await new Promise((r) => setTimeout(r, 10))
    t.ok(closed(receiver), 'the failing connection is closed')
    t.ok(closed(a.value), 'and so is its other end')
    t.equal(counters.get('failed'), 1, 'the failure is reported once')
    t.equal(counters.get('ciphers'), 0, 'both cipher pairs released')
  },
)

t.test(
  'the refusal log: a key mismatch named as such with its direction, a timeout apart, each kind bounded',
  async (t) => {
    let now = 1_000
    const log = new RefusalLog(() => now)
    const recording: ProtectorHooks = {
      refused: (remote, err, direction) => log.add(remote, direction, err),
      failed: () => {},
      ciphers: () => {},
    }
    const a = clusterProtector(parseClusterKey(newClusterKey(), 'a'), recording)
    const b = clusterProtector(parseClusterKey(newClusterKey(), 'b'), recording)
    await protectPair(a(), b())
    t.same(
      log
        .list()
        .map((r) => [r.kind, r.direction])
        .sort(),
      [
        ['key-mismatch', 'inbound'],
        ['key-mismatch', 'outbound'],
      ],
      'both ends record a key mismatch',
    )
    t.match(log.list()[0], { at: 1_000, remote: /^\/ip4\//, reason: /different cluster key/ })

    // the other end says nothing: the handshake times out, not a key mismatch
    const [silent] = multiaddrConnectionPair()
    // (a timer of our own: AbortSignal.timeout's does not keep the test's event loop alive)
    const quiet = new AbortController()
    setTimeout(() => quiet.abort(new Error('timed out')), 50)
    await t.rejects(a().protect(silent, { signal: quiet.signal }))
    t.equal(log.list().filter((r) => r.kind === 'handshake').length, 1, 'a timeout is a failed handshake')

    for (let i = 0; i < REFUSALS_KEPT + 5; i++) {
      now += 1
      log.add(`/ip4/10.0.0.9/tcp/${i}`, 'inbound', new Error('garbage'))
    }
    const kept = log.list()
    t.equal(kept.filter((r) => r.kind === 'handshake').length, REFUSALS_KEPT, 'bounded')
    t.equal(
      kept.filter((r) => r.kind === 'key-mismatch').length,
      2,
      "a scanner's garbage does not push the mismatches out",
    )
    t.same(
      kept.map((r) => r.at),
      kept.map((r) => r.at).sort((x, y) => x - y),
      'oldest first',
    )
  },
)
