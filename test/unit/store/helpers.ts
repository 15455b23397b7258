import { generateKeyPair } from '@libp2p/crypto/keys'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { LocalStore, type RecordSigner, type StoreSnapshot } from '../../../src/store/store.js'

export async function newSigner(): Promise<RecordSigner> {
  return createSigner(await generateKeyPair('Ed25519'))
}

/** A store on a settable clock. */
export async function newStore(
  opts: { signer?: RecordSigner; now?: { t: number }; snapshot?: StoreSnapshot; reapAfterMs?: number } = {},
) {
  const clock = opts.now ?? { t: 1_700_000_000_000 }
  const metrics = new Metrics()
  const signer = opts.signer ?? (await newSigner())
  const store = new LocalStore(
    { signer, verify: verifyRecordSignature, metrics, now: () => clock.t, reapAfterMs: opts.reapAfterMs },
    opts.snapshot,
  )
  return { store, clock, metrics, signer }
}
