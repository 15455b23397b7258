// The shims this host should have, from the store alone (the pure half of datapath/macvlan.ts).
import { generateKeyPair } from '@libp2p/crypto/keys'
import t from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { desiredShims, SHIM_PREFIX, shimName } from '../../../src/datapath/macvlan.js'
import { netLeaseKeys, networkKey, parseMacvlanNetwork } from '../../../src/ipam/macvlan.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { LocalStore } from '../../../src/store/store.js'
import type { JsonValue } from '../../../src/store/types.js'

t.test('one shim per network whose block this host holds, on its parent', async (t) => {
  const store = new LocalStore({
    signer: createSigner(await generateKeyPair('Ed25519')),
    verify: verifyRecordSignature,
    metrics: new Metrics(),
  })
  const net = (name: string, extra: Record<string, unknown>) =>
    store.put(
      networkKey(name),
      parseMacvlanNetwork({ name, driver: 'macvlan', ...extra }) as unknown as JsonValue,
    )
  const lease = (name: string, subnet: string) =>
    store.put(
      netLeaseKeys(name).key(store.self),
      {
        subnet,
        publicIp: '192.0.2.11',
        hostname: 'h1',
        backend: { type: 'macvlan' },
        claimedAt: Date.now() - 10,
      },
      { ttlMs: 60_000 },
    )
  await net('lan', { subnet: '192.0.2.0/24', range: '192.0.2.128/25' })
  await net('dmz', {
    subnet: '198.51.100.0/24',
    range: '198.51.100.0/26',
    gateway: '198.51.100.254',
    parent: 'eth1',
  })
  t.same(desiredShims(store, 'eth0'), [], 'no block yet: no shim')
  await lease('lan', '192.0.2.192/26')
  await lease('dmz', '198.51.100.32/27')
  // a block outside its network's range is not this host's to route
  await lease('gone', '10.0.0.0/26')
  t.same(desiredShims(store, 'eth0'), [
    {
      network: 'dmz',
      name: shimName('dmz'),
      parent: 'eth1',
      address: '198.51.100.33',
      block: '198.51.100.32/27',
    },
    {
      network: 'lan',
      name: shimName('lan'),
      parent: 'eth0',
      address: '192.0.2.193',
      block: '192.0.2.192/26',
    },
  ])
  t.match(shimName('lan'), new RegExp(`^${SHIM_PREFIX}[0-9a-f]{8}$`))
  t.ok(shimName('lan').length <= 15, 'fits IFNAMSIZ')
  await store.delete(networkKey('dmz'))
  t.same(
    desiredShims(store, 'eth0').map((s) => s.network),
    ['lan'],
    'a deleted network has no shim',
  )
})
