import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import t from 'tap'
import { Uint8ArrayList } from 'uint8arraylist'
import { withKeptKeyObject } from '../../../src/cluster/identity.js'

t.test('the host key with a kept KeyObject signs as libp2p does, and is the same key', async (t) => {
  const key = (await generateKeyPair('Ed25519')) as Ed25519PrivateKey
  const kept = withKeptKeyObject(key)
  const msg = new TextEncoder().encode('a gossipsub message')
  const sig = await kept.sign(msg)
  t.same(Buffer.from(sig), Buffer.from(await key.sign(msg)), 'Ed25519 is deterministic: the same signature')
  t.ok(await key.publicKey.verify(msg, sig), "libp2p's public key verifies it")
  const list = new Uint8ArrayList(msg.subarray(0, 5), msg.subarray(5))
  t.ok(await key.publicKey.verify(msg, await kept.sign(list as never)), 'a message in pieces is signed whole')
  t.notOk(await key.publicKey.verify(new TextEncoder().encode('another'), sig), 'and not another message')
  t.equal(kept.type, 'Ed25519')
  t.ok(kept.equals(key), 'equals the original key')
  t.equal(peerIdFromPrivateKey(kept).toString(), peerIdFromPrivateKey(key).toString(), 'the same peer id')
  t.ok(kept instanceof Object.getPrototypeOf(key).constructor, "keeps libp2p's class")
})
