// A cluster member gone bad, for the integration test: joins with the right
// key, then publishes hostile deltas on the store topic through real gossipsub.
// usage: node gossip-attacker.js <clusterKeyFile> <targetMultiaddr>
import '../../src/lib/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { createSigner, verifyRecordSignature } from '../../src/cluster/identity.js'
import { loadClusterKey } from '../../src/cluster/key.js'
import { Libp2pTransport } from '../../src/cluster/libp2p-transport.js'
import { clusterMetrics } from '../../src/cluster/metrics.js'
import { DELTA_TOPIC, decodeState, encodeDelta, encodePull, encodeState } from '../../src/cluster/wire.js'
import { Metrics } from '../../src/lib/metrics.js'
import { signingText } from '../../src/store/record.js'
import { LocalStore } from '../../src/store/store.js'
import type { StoreRecord } from '../../src/store/types.js'

const [keyFile, target] = process.argv.slice(2)
if (!keyFile || !target) throw new Error('usage: gossip-attacker <clusterKeyFile> <targetMultiaddr>')

const privateKey = await generateKeyPair('Ed25519')
const t = await Libp2pTransport.create({
  privateKey,
  psk: await loadClusterKey({ keyFile }),
  listen: ['/ip4/0.0.0.0/tcp/0'],
  announce: [],
  logger: pino({ level: 'silent' }),
  metrics: clusterMetrics(new Metrics()),
})
t.setHandlers({ gossip: () => 'ignore', request: () => encodeState([], new Map()), connected: () => {} })
await t.start()
const peer = await t.dial(target, 5000)
const deadline = Date.now() + 10_000
while (!t.node.services.pubsub.getSubscribers(DELTA_TOPIC).some((p) => p.toString() === peer)) {
  if (Date.now() > deadline) throw new Error('target never subscribed to the store topic')
  await new Promise((r) => setTimeout(r, 100))
}
// let a gossipsub heartbeat graft the mesh
await new Promise((r) => setTimeout(r, 1500))

const state = decodeState(await t.request(peer, encodePull(new Map()), 5000))
const victim = (state.records as StoreRecord[]).find((r) => r.key === `nodes/${peer}`)
if (!victim) throw new Error('target has no node record')
const signer = createSigner(privateKey)
const own = await new LocalStore({ signer, verify: verifyRecordSignature }).put('scratch/x', 1)
// a member holding the cluster key signs, validly, a lease under the target's owned prefix
const claim = { ...own, key: `leases/${peer}`, value: { subnet: '10.244.99.0/24' } }
const nonOwner: StoreRecord = { ...claim, sig: signer.sign(signingText(claim)) }
if (!verifyRecordSignature(signer.self, signingText(nonOwner), nonOwner.sig))
  throw new Error('non-owner record not validly signed')

const attacks: [string, Uint8Array][] = [
  ['malformed', new TextEncoder().encode('{"t":"delta","records":[{"key":')],
  [
    'oversize',
    new TextEncoder().encode(JSON.stringify({ t: 'delta', records: [], pad: 'x'.repeat(100_000) })),
  ],
  ['unsigned', encodeDelta([{ ...own, key: 'attack/unsigned', sig: '' }])],
  [
    'forged',
    encodeDelta([
      {
        ...victim,
        value: { name: 'forged' },
        // newer than any heartbeat the victim writes before this arrives (20 s ahead, inside the 60 s
        // drift bound): a stale record is dropped before its signature is checked, and this one must
        // reach the signature check however slowly the loaded machine delivers it
        version: { ...victim.version, wall: Date.now() + 20_000, logical: victim.version.logical + 1 },
      },
    ]),
  ],
  ['non-owner', encodeDelta([nonOwner])],
]
for (const [name, data] of attacks) {
  await t.node.services.pubsub.publish(DELTA_TOPIC, data)
  process.stdout.write(`${name}\n`)
}
await new Promise((r) => setTimeout(r, 500))
await t.stop()
