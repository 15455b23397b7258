// Who calls the application API (src/services/caller.ts) and ?near= ordering
// (src/services/near.ts): pure functions over records.
import t from 'tap'
import { CallerView, callerEndpoint, plainAddress } from '../../../src/services/caller.js'
import type { Member } from '../../../src/services/catalog.js'
import { nearestFirst } from '../../../src/services/near.js'
import { endpointCodec } from '../../../src/store/codecs.js'
import type { NodeValue } from '../../../src/store/records.js'
import type { JsonValue, StoreRecord } from '../../../src/store/types.js'
import { endpointValue } from '../../helpers/records.js'
import { newStore } from '../store/helpers.js'

const rec = (key: string, owner: string, value: unknown): StoreRecord => ({
  key,
  owner,
  value: value as JsonValue,
  version: { wall: 1, logical: 0 },
  tombstone: false,
  sig: '',
})

t.test('the caller is the endpoint of this host with the peer address', async (t) => {
  const records = [
    rec('endpoints/SELF/a-0123456789ab/eth0', 'SELF', endpointValue('a', '10.244.1.2')),
    rec('endpoints/SELF/b-0123456789ab/eth0', 'SELF', endpointValue('b', '10.244.1.3', { ipv6: 'fd00::3' })),
    rec('endpoints/OTHER/c-0123456789ab/eth0', 'OTHER', endpointValue('c', '10.244.2.2')),
    // a record under this host's prefix but written by another peer is no endpoint of ours
    rec('endpoints/SELF/d-0123456789ab/eth0', 'OTHER', endpointValue('d', '10.244.1.4')),
    rec('endpoints/SELF/e-0123456789ab/eth0', 'SELF', { ipv4: '10.244.1.5' }),
  ]
  t.equal(callerEndpoint(records, 'SELF', '10.244.1.2')?.value.name, 'a')
  t.equal(callerEndpoint(records, 'SELF', '::ffff:10.244.1.3')?.value.name, 'b', 'IPv4-mapped address')
  t.equal(callerEndpoint(records, 'SELF', 'fd00::3')?.value.name, 'b', 'by IPv6 too')
  t.equal(callerEndpoint(records, 'SELF', '10.244.2.2'), undefined, "another host's container")
  t.equal(callerEndpoint(records, 'SELF', '10.244.1.4'), undefined, 'a record this host did not write')
  t.equal(callerEndpoint(records, 'SELF', '10.244.1.5'), undefined, 'a malformed endpoint value')
  t.equal(callerEndpoint(records, 'SELF', '10.244.1.1'), undefined, 'the gateway (the host itself)')
  t.equal(callerEndpoint(records, 'SELF', ''), undefined)
  t.equal(plainAddress('::ffff:1.2.3.4'), '1.2.3.4')
  t.equal(plainAddress('::ffff:abcd'), '::ffff:abcd')
})

t.test('near: own host first, then by estimated RTT, hosts without a coordinate last', async (t) => {
  const coord = (x: number) => ({ vec: [x, 0], height: 0, error: 0.1, adjustment: 0 })
  const node = (peer: string, x?: number) => ({
    peer,
    value: { name: peer, ...(x !== undefined ? { coordinate: coord(x) } : {}) } as NodeValue,
  })
  const nodes = [node('A', 0), node('B', 0.05), node('C', 0.01), node('D')]
  const m = (peer: string) => ({ peer, name: `m-${peer}` }) as Member
  const order = (origin: string, peers: string[]) =>
    nearestFirst(peers.map(m), nodes, origin).map((x) => x.peer)
  t.same(order('A', ['D', 'B', 'A', 'C']), ['A', 'C', 'B', 'D'])
  t.same(order('B', ['A', 'C', 'B']), ['B', 'C', 'A'], 'from another host')
  t.same(
    order('D', ['C', 'A', 'D', 'B']),
    ['D', 'C', 'A', 'B'],
    'origin without coordinate: own first, rest as given',
  )
})

t.test(
  'CallerView: the endpoints and policies of a real store, read again only after a change',
  async (t) => {
    const { store } = await newStore()
    const self = store.self
    const view = new CallerView(store, self)
    t.equal(view.caller('10.244.1.2'), undefined, 'no endpoint yet')
    await store.put(
      `endpoints/${self}/a-0123456789ab/eth0`,
      endpointCodec.encode(endpointValue('a', '10.244.1.2', { service: 'web' })),
    )
    const ep = view.caller('::ffff:10.244.1.2')
    t.equal(ep?.value.name, 'a', 'seen after the put')
    t.equal(view.acl(ep as NonNullable<typeof ep>).defaultPolicy, 'allow', 'no acl/default: allow')
    await store.put('acl/default', { policy: 'deny' })
    await store.put('acl/policies/web', {
      name: 'web',
      services: ['web'],
      rules: [{ kv: 'config/', access: 'write' }],
    })
    const acl = view.acl(ep as NonNullable<typeof ep>)
    t.equal(acl.defaultPolicy, 'deny', 'the new default')
    t.ok(
      acl.rules.some((r) => r.source === 'policy "web"'),
      "and the policy bound to the caller's service",
    )
    await store.delete(`endpoints/${self}/a-0123456789ab/eth0`)
    t.equal(view.caller('10.244.1.2'), undefined, 'gone after the delete')
  },
)
