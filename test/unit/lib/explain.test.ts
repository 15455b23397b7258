import t from 'tap'
import { explainSubject, normalizeSubject, type Origin } from '../../../src/lib/explain.js'

const origins: Origin[] = [
  {
    kind: 'route',
    object: '10.244.2.0/24 via 10.244.2.0 dev plexus.1',
    keys: ['leases/peer2', 'config/network'],
  },
  { kind: 'neigh', object: '10.244.2.0 lladdr 02:00:00:00:00:02 dev plexus.1', keys: ['leases/peer2'] },
  { kind: 'rule', object: 'plexus:ports/tcp-18080-pre hook prerouting', keys: ['endpoints/peer1/c1/eth0'] },
  {
    kind: 'A',
    object: 'web.svc.plexus.internal 10.244.1.5',
    keys: ['endpoints/peer1/c1/eth0', 'endpoints/peer1/c1/eth0'],
  },
]
const index = (key: string) => ({ 'leases/peer2': 7, 'config/network': 2 })[key] ?? 0

t.test(
  'a subject names an object by one of its fields; records come with their index, sorted, once',
  async (t) => {
    t.same(explainSubject(origins, '10.244.2.0/24', index), [
      {
        kind: 'route',
        object: '10.244.2.0/24 via 10.244.2.0 dev plexus.1',
        records: [
          { key: 'config/network', index: 2 },
          { key: 'leases/peer2', index: 7 },
        ],
      },
    ])
    t.same(
      explainSubject(origins, '10.244.2.0', index).map((e) => e.kind),
      ['route', 'neigh'],
      'a gateway address names the route through it and its neighbour entry',
    )
    t.same(explainSubject(origins, 'WEB.svc.plexus.internal.', index)[0]?.records, [
      { key: 'endpoints/peer1/c1/eth0', index: 0 },
    ])
    t.equal(explainSubject(origins, 'plexus:ports/tcp-18080-pre#1a2b3c4d', index)[0]?.kind, 'rule')
    t.same(explainSubject(origins, '10.244.2', index), [], 'no partial fields')
    t.same(explainSubject(origins, '  ', index), [], 'an empty subject names nothing')
  },
)

t.test('normalizeSubject', async (t) => {
  t.equal(normalizeSubject(' Web.Ctr.plexus.internal. '), 'web.ctr.plexus.internal')
  t.equal(normalizeSubject('plexus:spoof/plx0a-mac#deadbeef'), 'plexus:spoof/plx0a-mac')
  t.equal(normalizeSubject('fe80::1#x'), 'fe80::1#x', 'a hash is only cut from a rule tag')
})
