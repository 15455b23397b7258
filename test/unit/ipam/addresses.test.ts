import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { AddressAllocator } from '../../../src/ipam/addresses.js'
import { type Cidr, parseCidr } from '../../../src/ipam/cidr.js'

const c = (s: string) => (parseCidr(s) as { cidr: Cidr }).cidr

async function setup(t: Test, subnet = '10.244.3.0/24') {
  const dir = await mkdtemp(join(tmpdir(), 'plexus-ipam-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const current = { subnet: c(subnet) as Cidr | undefined }
  const alloc = await AddressAllocator.open(dir, () => current.subnet)
  return { dir, current, alloc }
}

t.test('allocates after the gateway, repeated ADD returns the same address', async (t) => {
  const { alloc } = await setup(t)
  const a = await alloc.allocate({ containerId: 'c1', ifname: 'eth0' })
  t.match(a, {
    address: '10.244.3.2',
    gateway: '10.244.3.1',
    prefixLength: 24,
    subnet: '10.244.3.0/24',
    created: true,
  })
  const again = await alloc.allocate({ containerId: 'c1', ifname: 'eth0' })
  t.match(again, { address: '10.244.3.2', created: false })
  t.match(
    await alloc.allocate({ containerId: 'c1', ifname: 'eth1' }),
    { address: '10.244.3.3' },
    'another interface, another address',
  )
})

t.test('round robin: a released address is not handed out again at once', async (t) => {
  const { alloc } = await setup(t)
  await alloc.allocate({ containerId: 'c1', ifname: 'eth0' })
  t.same(
    (await alloc.release({ containerId: 'c1', ifname: 'eth0' })).map((a) => a.address),
    ['10.244.3.2'],
  )
  t.same(await alloc.release({ containerId: 'c1', ifname: 'eth0' }), [], 'release is idempotent')
  t.match(await alloc.allocate({ containerId: 'c2', ifname: 'eth0' }), { address: '10.244.3.3' })
})

t.test('static requests', async (t) => {
  const { alloc } = await setup(t)
  t.match(await alloc.allocate({ containerId: 'c1', ifname: 'eth0', address: '10.244.3.77' }), {
    address: '10.244.3.77',
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0', address: '10.244.3.77' }), {
    code: 'PLX_IPAM_TAKEN',
    message: /taken by c1\/eth0/,
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0', address: '10.244.4.5' }), {
    code: 'PLX_IPAM_OUT_OF_RANGE',
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0', address: '10.244.3.1' }), {
    code: 'PLX_IPAM_RESERVED',
    message: /gateway/,
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0', address: '10.244.3.0' }), {
    code: 'PLX_IPAM_RESERVED',
    message: /network/,
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0', address: '10.244.3.255' }), {
    code: 'PLX_IPAM_RESERVED',
    message: /broadcast/,
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0', address: 'x' }), {
    code: 'PLX_IPAM_INVALID_ARGUMENT',
  })
  await t.rejects(alloc.allocate({ containerId: 'c1', ifname: 'eth0', address: '10.244.3.78' }), {
    code: 'PLX_IPAM_TAKEN',
    message: /already holds/,
  })
  t.match(await alloc.allocate({ containerId: 'c1', ifname: 'eth0', address: '10.244.3.77' }), {
    created: false,
  })
  t.equal(alloc.list().length, 1, 'failed requests left nothing allocated')
})

t.test('bad keys are refused', async (t) => {
  const { alloc } = await setup(t)
  await t.rejects(alloc.allocate({ containerId: '', ifname: 'eth0' }), { code: 'PLX_IPAM_INVALID_ARGUMENT' })
  await t.rejects(alloc.allocate({ containerId: 'c/1', ifname: 'eth0' }), {
    code: 'PLX_IPAM_INVALID_ARGUMENT',
  })
  await t.rejects(alloc.allocate({ containerId: 'c1', ifname: 'averyveryverylongname' }), {
    code: 'PLX_IPAM_INVALID_ARGUMENT',
  })
  await t.rejects(alloc.allocate({ containerId: 'c1', ifname: '..' }), { code: 'PLX_IPAM_INVALID_ARGUMENT' })
})

t.test('exhaustion: a /30 has one container address', async (t) => {
  const { alloc } = await setup(t, '10.244.3.4/30')
  t.match(await alloc.allocate({ containerId: 'c1', ifname: 'eth0' }), {
    address: '10.244.3.6',
    gateway: '10.244.3.5',
  })
  await t.rejects(alloc.allocate({ containerId: 'c2', ifname: 'eth0' }), { code: 'PLX_IPAM_EXHAUSTED' })
  await alloc.release({ containerId: 'c1', ifname: 'eth0' })
  t.match(
    await alloc.allocate({ containerId: 'c2', ifname: 'eth0' }),
    { address: '10.244.3.6' },
    'wraps around',
  )
})

t.test('no lease: typed error', async (t) => {
  const { alloc, current } = await setup(t)
  current.subnet = undefined
  await t.rejects(alloc.allocate({ containerId: 'c1', ifname: 'eth0' }), { code: 'PLX_IPAM_NO_LEASE' })
})

t.test('concurrent allocations never collide', async (t) => {
  const { alloc } = await setup(t)
  const got = await Promise.all(
    Array.from({ length: 100 }, (_, i) => alloc.allocate({ containerId: `c${i}`, ifname: 'eth0' })),
  )
  t.equal(new Set(got.map((a) => a.address)).size, 100)
})

t.test('persisted: a new allocator instance knows every allocation', async (t) => {
  const { dir, alloc } = await setup(t)
  await alloc.allocate({ containerId: 'c1', ifname: 'eth0' })
  await alloc.allocate({ containerId: 'c2', ifname: 'eth0' })
  await alloc.release({ containerId: 'c1', ifname: 'eth0' })
  const again = await AddressAllocator.open(dir, () => c('10.244.3.0/24'))
  t.same(
    again.list().map((a) => a.containerId),
    ['c2'],
  )
  t.match(await again.allocate({ containerId: 'c2', ifname: 'eth0' }), {
    address: '10.244.3.3',
    created: false,
  })
  t.match(
    await again.allocate({ containerId: 'c3', ifname: 'eth0' }),
    { address: '10.244.3.4' },
    'round robin survives too',
  )
  t.match(JSON.parse(await readFile(join(dir, 'allocations.json'), 'utf8')), { version: 1 })
})

t.test('a damaged state file stops the allocator instead of risking a double allocation', async (t) => {
  const { dir } = await setup(t)
  const file = join(dir, 'allocations.json')
  await writeFile(
    file,
    '{"version":1,"allocations":[{"containerId":"a","ifname":"eth0","address":"10.244.3.2","subnet":"10.244.3.0/24","allocatedAt":"x"},{"containerId":"b","ifname":"eth0","address":"10.244.3.2","subnet":"10.244.3.0/24","allocatedAt":"x"}],"last":{}}',
  )
  await t.rejects(
    AddressAllocator.open(dir, () => undefined),
    { code: 'PLX_IPAM_STATE_CORRUPT', message: /allocated twice/ },
  )
  await writeFile(file, '{')
  await t.rejects(
    AddressAllocator.open(dir, () => undefined),
    { code: 'PLX_IPAM_STATE_CORRUPT', message: /not JSON/ },
  )
})

t.test('GC keeps only valid attachments', async (t) => {
  const { alloc } = await setup(t)
  for (const id of ['a', 'b', 'c']) await alloc.allocate({ containerId: id, ifname: 'eth0' })
  const gone = await alloc.gc([{ containerId: 'b', ifname: 'eth0' }])
  t.same(
    gone.map((a) => a.containerId),
    ['a', 'c'],
  )
  t.same(
    alloc.list().map((a) => a.containerId),
    ['b'],
  )
  t.same(await alloc.gc([{ containerId: 'b', ifname: 'eth0' }]), [])
})

t.test('when the lease moves, old allocations are reported and a repeated ADD moves', async (t) => {
  const { alloc, current } = await setup(t)
  await alloc.allocate({ containerId: 'a', ifname: 'eth0' })
  await alloc.allocate({ containerId: 'b', ifname: 'eth0' })
  t.same(alloc.stale(), [])
  current.subnet = c('10.244.9.0/24')
  t.same(
    alloc.stale().map((a) => `${a.containerId} ${a.address}`),
    ['a 10.244.3.2', 'b 10.244.3.3'],
  )
  t.match(await alloc.allocate({ containerId: 'a', ifname: 'eth0' }), {
    address: '10.244.9.2',
    created: true,
  })
  t.same(
    alloc.stale().map((a) => a.containerId),
    ['b'],
  )
  t.equal(alloc.list().length, 2, 'the old address of a was replaced, not kept')
})
