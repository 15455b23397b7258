// What the cluster code keeps after a call or a record is over (issue 22: the
// connection soak's heap must return to where it started).
import { generateKeyPair } from '@libp2p/crypto/keys'
import t from 'tap'
import { withDeadline } from '../../../src/cluster/deadline.js'
import {
  createSigner,
  VERIFIED_MAX,
  verifiedCacheSize,
  verifyRecordSignature,
} from '../../../src/cluster/identity.js'

/** the timers set and neither fired nor cleared while fn runs (a deadline's timer is unref'd: Node does not list it) */
async function liveTimers(fn: () => Promise<void>): Promise<number> {
  const live = new Set<unknown>()
  const { setTimeout: set, clearTimeout: clear } = globalThis
  globalThis.setTimeout = ((cb: () => void, ms?: number) => {
    const h = set(() => {
      live.delete(h)
      cb()
    }, ms)
    live.add(h)
    return h
  }) as typeof setTimeout
  globalThis.clearTimeout = ((h: Parameters<typeof clearTimeout>[0]) => {
    live.delete(h)
    clear(h)
  }) as typeof clearTimeout
  try {
    await fn()
  } finally {
    globalThis.setTimeout = set
    globalThis.clearTimeout = clear
  }
  return live.size
}

t.test('a deadline aborts the call with a TimeoutError after its time', async (t) => {
  // the deadline's timer does not keep the process alive; this one does until it fires
  const hold = setTimeout(() => {}, 5000)
  t.teardown(() => clearTimeout(hold))
  const err = await withDeadline(
    20,
    (signal) =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
      ),
  ).catch((e: unknown) => e as Error)
  t.equal((err as Error).name, 'TimeoutError')
})

t.test('a deadline leaves no timer once its call settles, answered or failed', async (t) => {
  const live = await liveTimers(async () => {
    t.equal(await withDeadline(60_000, async () => 'answer'), 'answer')
    await t.rejects(
      withDeadline(60_000, async () => {
        throw new Error('refused')
      }),
      /refused/,
    )
  })
  t.equal(live, 0, 'both 60 s timers are gone')
})

t.test('the signature cache holds at most VERIFIED_MAX verdicts and still answers right', async (t) => {
  const signer = createSigner(await generateKeyPair('Ed25519'))
  const good = `{"key":"nodes/${signer.self}","n":0}`
  const sig = signer.sign(good)
  t.ok(verifyRecordSignature(signer.self, good, sig))
  // heartbeats: a new signed text every time
  for (let i = 1; i <= VERIFIED_MAX + 1000; i++) verifyRecordSignature(signer.self, `{"n":${i}}`, sig)
  t.ok(verifiedCacheSize() <= VERIFIED_MAX, `${verifiedCacheSize()} verdicts kept`)
  t.ok(verifyRecordSignature(signer.self, good, sig), 'a dropped verdict is computed again')
  t.notOk(verifyRecordSignature(signer.self, `${good} `, sig), 'another text under the same signature fails')
})
