import t, { type Test } from 'tap'
import type { RecordCodec } from '../../../src/store/codec.js'
import {
  allocCodec,
  allocStateCodec,
  capacityCodec,
  drainCodec,
  endpointCodec,
  healthCodec,
  labelsCodec,
  leaseCodec,
  nodeCodec,
  registrationCodec,
  serviceCodec,
  wireguardRotationCodec,
} from '../../../src/store/codecs.js'
import type { JsonValue } from '../../../src/store/types.js'

type Case = { key: string; owner?: string; value: unknown }

/** good decodes to itself and encodes; every bad one is refused with a reason naming `why` */
function check<T>(
  t: Test,
  codec: RecordCodec<T>,
  good: Case,
  bad: [why: string | RegExp, rec: Case][],
): void {
  const rec = (c: Case) => ({ key: c.key, owner: c.owner ?? 'P1', value: c.value as JsonValue })
  const d = codec.decode(rec(good))
  t.same(d, { ok: true, value: good.value }, `${good.key} decodes`)
  t.same(codec.valueOf(rec(good)), good.value)
  t.same(codec.encode(good.value as T), good.value, 'encodes')
  for (const [why, c] of bad) {
    const r = codec.decode(rec(c))
    t.equal(r.ok, false, `refused: ${why}`)
    if (!r.ok) t.match(r.reason, why)
    t.equal(codec.valueOf(rec(c)), undefined)
  }
}

const endpoint = {
  containerId: 'c1',
  ifname: 'eth0',
  name: 'web-1',
  host: 'h1',
  ipv4: '10.244.1.2',
  mac: '02:00:00:00:00:01',
  netns: '/run/netns/x',
  hostVeth: 'veth1',
  labels: {},
  service: 'web',
  ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
  published: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  createdAt: '2026-01-01T00:00:00Z',
}

t.test('leases/', async (t) => {
  const lease = {
    subnet: '10.244.3.0/24',
    publicIp: '192.0.2.3',
    hostname: 'h3',
    backend: { type: 'wireguard', publicKey: `${'A'.repeat(42)}E=`, endpoint: '192.0.2.3:51820' },
    claimedAt: 1,
    confirmedAt: 2,
  }
  const key = 'leases/P1'
  check(t, leaseCodec, { key, value: lease }, [
    ['/publicIp', { key, value: { ...lease, publicIp: 'h3' } }],
    ['/hostname', { key, value: { ...lease, hostname: 'H_3' } }],
    ['/backend/type', { key, value: { ...lease, backend: { type: 'gre' } } }],
    [
      '/backend/vtepMac',
      { key, value: { ...lease, backend: { type: 'vxlan', vtepMac: '02:AA:00:00:00:01' } } },
    ],
    ['/backend/vni', { key, value: { ...lease, backend: { type: 'vxlan', vni: 0 } } }],
    ['/backend/publicKey', { key, value: { ...lease, backend: { type: 'wireguard', publicKey: 'short=' } } }],
    ['/claimedAt', { key, value: { ...lease, claimedAt: 0 } }],
    ['not its owner P1', { key, owner: 'P2', value: lease }],
  ])
})

t.test('nodes/', async (t) => {
  const node = {
    name: 'h1',
    address: '192.0.2.1',
    multiaddrs: ['/ip4/192.0.2.1/tcp/7946'],
    labels: { zone: 'a' },
  }
  const coordinate = { vec: [0.1, 0], height: 0.001, error: 1.5, adjustment: 0 }
  check(t, nodeCodec, { key: 'nodes/P1', value: { ...node, coordinate } }, [
    ['/address', { key: 'nodes/P1', value: { name: 'h1' } }],
    ['/multiaddrs', { key: 'nodes/P1', value: { ...node, multiaddrs: '/ip4/192.0.2.1' } }],
    ['/labels/zone', { key: 'nodes/P1', value: { ...node, labels: { zone: 1 } } }],
    ['/coordinate/vec', { key: 'nodes/P1', value: { ...node, coordinate: { ...coordinate, vec: 'x' } } }],
    ['not its owner P1', { key: 'nodes/P1', owner: 'P9', value: node }],
  ])
})

t.test('endpoints/', async (t) => {
  const key = 'endpoints/P1/c1/eth0'
  check(t, endpointCodec, { key, value: endpoint }, [
    ['/ipv4', { key, value: { ...endpoint, ipv4: '10.244.1.300' } }],
    ['/name', { key, value: { ...endpoint, name: undefined } }],
    [
      '/published/0/protocol',
      { key, value: { ...endpoint, published: [{ hostPort: 1, containerPort: 1, protocol: 'sctp' }] } },
    ],
    ['/service', { key, value: { ...endpoint, service: 'Not A Label' } }],
    ['not its owner P1', { key, owner: 'P2', value: endpoint }],
    ['not under endpoints/', { key: 'services/web', value: endpoint }],
    ['/', { key, value: null }],
  ])
})

t.test('services/', async (t) => {
  const svc = { name: 'web', tags: ['a'], ports: [{ port: 80, protocol: 'tcp' }] }
  check(t, serviceCodec, { key: 'services/web', owner: 'any', value: svc }, [
    ['name is web, the key says api', { key: 'services/api', value: svc }],
    ['/tags', { key: 'services/web', value: { ...svc, tags: ['a', 'a'] } }],
    ['/checks/0', { key: 'services/web', value: { ...svc, checks: [{ name: 'x', type: 'ping' }] } }],
  ])
})

t.test('registrations/ and health/', async (t) => {
  const reg = { service: 'web', endpointKey: 'endpoints/P1/c1/eth0', tags: [], ports: [] }
  const key = 'registrations/P1/c1/eth0/web'
  check(t, registrationCodec, { key, value: reg }, [
    ['/endpointKey', { key, value: { ...reg, endpointKey: 'nodes/P1' } }],
    ['/ports', { key, value: { ...reg, ports: undefined } }],
  ])
  const health = { endpointKey: 'endpoints/P1/c1/eth0', status: 'critical', output: '', checkedAt: 'x' }
  const hkey = 'health/P1/c1:eth0:web:http'
  check(t, healthCodec, { key: hkey, value: health }, [
    ['/status', { key: hkey, value: { ...health, status: 'warning' } }],
    [
      'the endpoint host is P2, the key says P1',
      { key: hkey, value: { ...health, endpointKey: 'endpoints/P2/c/e' } },
    ],
  ])
})

t.test('capacity/, allocs/ and allocstate/', async (t) => {
  const resources = { cpu: 500, memoryMb: 64 }
  check(
    t,
    capacityCodec,
    { key: 'capacity/P1', value: { total: resources, used: resources, eligible: true } },
    [
      ['/eligible', { key: 'capacity/P1', value: { total: resources, used: resources } }],
      [
        '/used/cpu',
        { key: 'capacity/P1', value: { total: resources, used: { cpu: -1, memoryMb: 0 }, eligible: true } },
      ],
    ],
  )
  const alloc = {
    id: 'a-1',
    job: 'j',
    jobVersion: 1,
    group: 'g',
    slot: '0',
    host: 'P2',
    hostName: 'h2',
    resources,
    createdAt: 1,
  }
  const akey = 'allocs/P1/j/g/0'
  check(t, allocCodec, { key: akey, value: alloc }, [
    ['slot is 0, the key says 1', { key: 'allocs/P1/j/g/1', value: alloc }],
    ['job is j, the key says k', { key: 'allocs/P1/k/g/0', value: alloc }],
    ['/reschedule', { key: akey, value: { ...alloc, reschedule: { attempt: 1, since: 0, extra: 1 } } }],
    ['/id', { key: akey, value: { ...alloc, id: 'A/1' } }],
  ])
  const state = {
    ...alloc,
    status: 'running',
    updatedAt: 2,
    tasks: { main: { state: 'running', restarts: 0 } },
  }
  const skey = 'allocstate/P2/a-1'
  check(t, allocStateCodec, { key: skey, owner: 'P2', value: state }, [
    ['/status', { key: skey, owner: 'P2', value: { ...state, status: 'sleeping' } }],
    [
      '/tasks/main/state',
      { key: skey, owner: 'P2', value: { ...state, tasks: { main: { state: 'x', restarts: 0 } } } },
    ],
    ['/exitCode', { key: skey, owner: 'P2', value: { ...state, exitCode: 256 } }],
    ['id is a-1, the key says a-2', { key: 'allocstate/P2/a-2', owner: 'P2', value: state }],
    ['host is P2, the key says P3', { key: 'allocstate/P3/a-1', owner: 'P3', value: state }],
  ])
  const tasks = Object.fromEntries(
    Array.from({ length: 33 }, (_, i) => [`t${i}`, { state: 'running', restarts: 0 }]),
  )
  t.equal(
    allocStateCodec.decode({ key: skey, owner: 'P2', value: { ...state, tasks } }).ok,
    false,
    'at most 32 tasks',
  )
})

t.test('config/labels/ and config/drain/', async (t) => {
  const labels = { zone: 'a', 'example.com/rack': 'r1' }
  check(t, labelsCodec, { key: 'config/labels/h1', owner: 'any', value: labels }, [
    ['/zone', { key: 'config/labels/h1', value: { zone: 7 } }],
    ['/-bad', { key: 'config/labels/h1', value: { '-bad': 'x' } }],
    ['/', { key: 'config/labels/h1', value: ['zone'] }],
  ])
  check(t, drainCodec, { key: 'config/drain/h1', owner: 'any', value: { since: '2026-12-03T10:00:00Z' } }, [
    ['/since', { key: 'config/drain/h1', value: {} }],
    ['/', { key: 'config/drain/h1', value: true }],
  ])
})

t.test('config/wireguard-rotation: one key, a generation from 1', async (t) => {
  const key = 'config/wireguard-rotation'
  const value = { generation: 2, requestedAt: 1_800_000_000_000 }
  check(t, wireguardRotationCodec, { key, owner: 'any', value }, [
    ['/generation', { key, value: { ...value, generation: 0 } }],
    ['/generation', { key, value: { ...value, generation: 1.5 } }],
    ['/requestedAt', { key, value: { generation: 1 } }],
    ['not config/wireguard-rotation', { key: `${key}-x`, value }],
  ])
})

t.test('encode refuses a malformed value with a stable code', async (t) => {
  t.throws(() => capacityCodec.encode({ total: { cpu: 1, memoryMb: 1 } } as never), {
    code: 'PLX_STORE_BAD_VALUE',
  })
})
