import t from 'tap'
import { formatCidr, parseCidr } from '../../../src/ipam/cidr.js'
import { networkRanges, parseNetworkConfig } from '../../../src/ipam/config.js'
import { chooseSubnet, freeSubnets, type Lease, validLeases } from '../../../src/ipam/leases.js'
import type { JsonValue, StoreRecord } from '../../../src/store/types.js'

const NOW = 1_700_000_000_000
const KEY1 = `${'A'.repeat(42)}E=`
const KEY2 = `${'B'.repeat(42)}E=`
const cfg = parseNetworkConfig({ Network: '10.244.0.0/16' })

function rec(
  peer: string,
  value: Record<string, JsonValue>,
  o: { owner?: string; wall?: number; ttlMs?: number | null } = {},
): StoreRecord {
  const r: StoreRecord = {
    key: `leases/${peer}`,
    value: {
      publicIp: '192.0.2.11',
      hostname: peer.toLowerCase(),
      backend: { type: 'vxlan' },
      claimedAt: NOW - 1000,
      ...value,
    },
    owner: o.owner ?? peer,
    version: { wall: o.wall ?? NOW - 1000, logical: 0 },
    tombstone: false,
    sig: '',
  }
  if (o.ttlMs !== null) r.ttlMs = o.ttlMs ?? 60_000
  return r
}

const subnets = (ls: Lease[]) => ls.map((l) => `${l.peerId}=${formatCidr(l.subnet)}`)

t.test('valid leases pass', async (t) => {
  const v = validLeases(
    [
      rec('A', { subnet: '10.244.1.0/24' }),
      rec('B', { subnet: '10.244.2.0/24', backend: { type: 'vxlan', vtepMac: '02:00:00:00:00:01', vni: 1 } }),
    ],
    cfg,
    NOW,
  )
  t.same(subnets(v.valid), ['A=10.244.1.0/24', 'B=10.244.2.0/24'])
  t.same(v.invalid, [])
  t.equal(v.valid[1]?.value.backend.vtepMac, '02:00:00:00:00:01')
  t.equal(v.valid[0]?.expiresAt, NOW - 1000 + 60_000)
})

t.test('hostile and malformed leases are ignored and reported', async (t) => {
  const v = validLeases(
    [
      rec('A', { subnet: '10.245.1.0/24' }),
      rec('B', { subnet: '10.244.0.0/16' }),
      rec('C', { subnet: '10.244.3.0/24', publicIp: '10.244.9.9' }),
      rec('D', { subnet: 'nope' }),
      rec('E', { subnet: '10.244.5.0/24' }, { owner: 'X' }),
      rec('F', { subnet: '10.244.6.0/24' }, { ttlMs: null }),
      rec('G', { subnet: '10.244.7.0/24', backend: { type: 'udp' } }),
      rec('H', { subnet: '10.244.8.0/24', claimedAt: NOW + 3_600_000 }),
      rec('I', { subnet: '10.244.9.0/24', backend: { type: 'vxlan', vtepMac: 'ZZ' } }),
      { ...rec('J', {}), value: 'text' },
      rec('K', { subnet: '10.244.10.0/24', backend: { type: 'wireguard', publicKey: 'short=' } }),
      rec('L', { subnet: '10.244.11.0/24', backend: { type: 'wireguard', endpoint: '192.0.2.11:0' } }),
      rec('M', { subnet: '10.244.12.0/24', backend: { type: 'wireguard', endpoint: 'h1:51820' } }),
      rec('N', { subnet: '10.244.13.0/24', backend: { type: 'wireguard', publicKey: 7 } }),
      // a next key (key rotation): of a key's shape, beside a different current key
      rec('O', {
        subnet: '10.244.14.0/24',
        backend: { type: 'wireguard', publicKey: KEY1, nextPublicKey: 'x=' },
      }),
      rec('P', { subnet: '10.244.15.0/24', backend: { type: 'wireguard', nextPublicKey: KEY1 } }),
      rec('Q', {
        subnet: '10.244.16.0/24',
        backend: { type: 'wireguard', publicKey: KEY1, nextPublicKey: KEY1 },
      }),
    ],
    cfg,
    NOW,
  )
  t.same(v.valid, [])
  t.same(
    v.invalid.map((i) => [i.key, i.kind]),
    [
      ['leases/A', 'outside-network'],
      ['leases/B', 'outside-network'],
      ['leases/C', 'public-ip-in-network'],
      ['leases/D', 'malformed'],
      ['leases/E', 'malformed'],
      ['leases/F', 'no-ttl'],
      ['leases/G', 'malformed'],
      ['leases/H', 'malformed'],
      ['leases/I', 'malformed'],
      ['leases/J', 'malformed'],
      ['leases/K', 'malformed'],
      ['leases/L', 'malformed'],
      ['leases/M', 'malformed'],
      ['leases/N', 'malformed'],
      ['leases/O', 'malformed'],
      ['leases/P', 'malformed'],
      ['leases/Q', 'malformed'],
    ],
  )
  t.match(
    v.invalid.slice(-2).map((i) => i.reason),
    [/nextPublicKey without a publicKey/, /nextPublicKey is its publicKey/],
  )
})

t.test('a WireGuard lease announcing its next key keeps it beside the current one', async (t) => {
  const backend = { type: 'wireguard', publicKey: KEY1, nextPublicKey: KEY2, endpoint: '192.0.2.11:51820' }
  const v = validLeases([rec('A', { subnet: '10.244.1.0/24', backend })], cfg, NOW)
  t.same(v.invalid, [])
  t.same(v.valid[0]?.value.backend, backend)
})

t.test('conflicts: the older live claim wins, ties go to the smaller peer id', async (t) => {
  const s = '10.244.4.0/24'
  let v = validLeases(
    [rec('B', { subnet: s, claimedAt: NOW - 5000 }), rec('A', { subnet: s, claimedAt: NOW - 100 })],
    cfg,
    NOW,
  )
  t.same(subnets(v.valid), [`B=${s}`])
  t.match(v.invalid, [
    { key: 'leases/A', kind: 'conflict', heldBy: 'B', reason: /held by the older claim of b/ },
  ])
  v = validLeases(
    [rec('B', { subnet: s, claimedAt: NOW - 100 }), rec('A', { subnet: s, claimedAt: NOW - 100 })],
    cfg,
    NOW,
  )
  t.same(subnets(v.valid), [`A=${s}`], 'tie broken by peer id')
  // the same verdict whatever the input order
  v = validLeases(
    [rec('A', { subnet: s, claimedAt: NOW - 100 }), rec('B', { subnet: s, claimedAt: NOW - 100 })],
    cfg,
    NOW,
  )
  t.same(subnets(v.valid), [`A=${s}`])
})

t.test('an expired lease has no claim; a re-claim after expiry does not beat the new holder', async (t) => {
  const s = '10.244.4.0/24'
  // A held the subnet since long ago but its lease expired; B claimed it since.
  const aExpired = rec('A', { subnet: s, claimedAt: NOW - 100_000 }, { wall: NOW - 70_000, ttlMs: 60_000 })
  const b = rec('B', { subnet: s, claimedAt: NOW - 5_000 }, { wall: NOW - 5_000 })
  let v = validLeases([aExpired, b], cfg, NOW)
  t.same(subnets(v.valid), [`B=${s}`])
  t.same(v.invalid, [], 'expired records are simply gone')
  // A comes back and re-claims: a re-claim carries a new claimedAt, so B keeps it.
  const aBack = rec('A', { subnet: s, claimedAt: NOW }, { wall: NOW })
  v = validLeases([aBack, b], cfg, NOW)
  t.same(subnets(v.valid), [`B=${s}`])
  t.match(v.invalid, [{ key: 'leases/A', kind: 'conflict' }])
})

t.test('free subnet choice skips taken ranges and reports a full range', async (t) => {
  const small = parseNetworkConfig({
    Network: '10.99.0.0/24',
    SubnetLen: 26,
    SubnetMin: '10.99.0.64',
    SubnetMax: '10.99.0.192',
  })
  const r = networkRanges(small)
  const c = (s: string) => (parseCidr(s) as { cidr: { base: number; prefix: number } }).cidr
  t.same(freeSubnets(r, [], 10).map(formatCidr), ['10.99.0.64/26', '10.99.0.128/26', '10.99.0.192/26'])
  t.same(freeSubnets(r, [c('10.99.0.128/26')], 10).map(formatCidr), ['10.99.0.64/26', '10.99.0.192/26'])
  t.same(
    freeSubnets(r, [c('10.99.0.0/25')], 10).map(formatCidr),
    ['10.99.0.128/26', '10.99.0.192/26'],
    'a wider taken range',
  )
  t.same(freeSubnets(r, [], 2).map(formatCidr), ['10.99.0.64/26', '10.99.0.128/26'], 'limit')

  const leases = validLeases(
    [
      rec('A', { subnet: '10.99.0.64/26' }),
      rec('B', { subnet: '10.99.0.128/26' }),
      rec('C', { subnet: '10.99.0.192/26' }),
    ],
    small,
    NOW,
  ).valid
  t.same(
    chooseSubnet(small, leases.slice(0, 2), () => 0.99),
    { subnet: c('10.99.0.192/26') },
  )
  t.match(chooseSubnet(small, leases), {
    reason:
      /^no free subnet: all 3 \/26 subnets from 10\.99\.0\.64 to 10\.99\.0\.192 in 10\.99\.0\.0\/24 are held \(10\.99\.0\.64\/26 a, /,
  })
})

// Speed is bench/'s to judge (a wall-clock bound here fails on a loaded CI machine, not on slow code):
// these two check the answers at size and print the time.
t.test('free subnet walk on a huge network', async (t) => {
  const huge = parseNetworkConfig({ Network: '10.0.0.0/8', SubnetLen: 30 })
  const start = process.hrtime.bigint()
  const taken = Array.from({ length: 50_000 }, (_, i) => ({ base: 0x0a000000 + 4 * (i + 1), prefix: 30 }))
  const free = freeSubnets(networkRanges(huge), taken, 100)
  t.equal(free.length, 100)
  t.equal(formatCidr(free[0] as { base: number; prefix: number }), '10.3.13.68/30')
  t.comment(
    `freeSubnets past 50,000 taken /30s: ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1)} ms`,
  )
})

t.test('judging 10,000 leases (the datapath runs this on every store change)', async (t) => {
  const big = parseNetworkConfig({ Network: '10.0.0.0/8', SubnetLen: 24 })
  const records = Array.from({ length: 10_000 }, (_, i) =>
    rec(`P${i}`, {
      subnet: `10.${(i + 1) >> 8}.${(i + 1) & 255}.0/24`,
      publicIp: `192.0.${i >> 8}.${i & 255}`,
    }),
  )
  records.push(rec('Q', { subnet: '10.0.1.0/24', claimedAt: NOW }))
  const start = process.hrtime.bigint()
  const v = validLeases(records, big, NOW)
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  t.equal(v.valid.length, 10_000)
  t.match(v.invalid, [{ key: 'leases/Q', kind: 'conflict', heldBy: 'P0' }])
  t.comment(`validLeases over 10,001 records: ${ms.toFixed(1)} ms`)
})
