// The traffic account: which connections count and on which host, each byte once across samples,
// and the rate that decays when a pair goes quiet.
import t from 'tap'
import type { CtEntry } from '../../../src/lib/conntrack.js'
import { type AddressOwner, MAX_PAIRS, pairOf, TrafficAccount } from '../../../src/traffic/account.js'

const owners = new Map<string, AddressOwner>([
  ['10.0.1.2', { service: 'web', local: true }],
  ['10.0.1.3', { service: 'api', local: true }],
  ['10.0.2.2', { service: 'db', local: false }],
  ['10.0.2.3', { service: 'web', local: false }],
])

function conn(id: number, src: string, dst: string, bytes: [number, number], replySrc = dst): CtEntry {
  return {
    id,
    orig: { src, dst, protocol: 6, sport: 40000 + id, dport: 8080 },
    reply: { src: replySrc, dst: src, protocol: 6, sport: 8080, dport: 40000 + id },
    origBytes: bytes[0],
    replyBytes: bytes[1],
    seenReply: bytes[1] > 0,
  }
}

t.test('counted on the host of the side that opened the connection, between two services', async (t) => {
  t.same(pairOf(conn(1, '10.0.1.2', '10.0.1.3', [1, 1]), owners), ['web', 'api'], 'local client')
  t.same(pairOf(conn(2, '10.0.1.3', '10.0.2.2', [1, 1]), owners), ['api', 'db'], 'to another host')
  t.equal(
    pairOf(conn(3, '10.0.2.2', '10.0.1.3', [1, 1]), owners),
    undefined,
    "another host's client counts there",
  )
  t.equal(pairOf(conn(4, '10.0.1.2', '192.0.2.9', [1, 1]), owners), undefined, 'not a service')
  t.equal(pairOf(conn(5, '10.0.1.2', '10.0.2.3', [1, 1]), owners), undefined, 'within one service')
  t.same(
    pairOf(conn(6, '10.0.1.2', '192.0.2.12', [1, 1], '10.0.2.2'), owners),
    ['web', 'db'],
    'a published port: the answering side is the reply source after DNAT',
  )
})

t.test('each byte once: a connection seen by several samples adds only what it moved since', async (t) => {
  const a = new TrafficAccount(60_000)
  t.same([...a.sample([conn(1, '10.0.1.2', '10.0.1.3', [100, 900])], owners, 0)], [['web api', 1000]])
  const second = a.sample(
    [conn(1, '10.0.1.2', '10.0.1.3', [150, 1350]), conn(2, '10.0.1.3', '10.0.2.2', [10, 20])],
    owners,
    10_000,
  )
  t.same(
    [...second],
    [
      ['web api', 500],
      ['api db', 30],
    ],
  )
  t.same(
    [...a.sample([conn(1, '10.0.1.2', '10.0.1.3', [150, 1350])], owners, 20_000)],
    [],
    'unchanged: nothing',
  )
  // the kernel reused id 1 for a new connection (other ports): counted whole
  const reused = {
    ...conn(1, '10.0.1.2', '10.0.1.3', [40, 60]),
    orig: { ...conn(7, '10.0.1.2', '10.0.1.3', [0, 0]).orig },
  }
  t.same([...a.sample([reused], owners, 30_000)], [['web api', 100]])
})

t.test('rates: steady traffic converges on its rate, a quiet pair fades and goes', async (t) => {
  const a = new TrafficAccount(60_000)
  let bytes = 0
  for (let s = 0; s <= 600; s += 10) {
    bytes += 10 * 500 // 500 B/s
    a.sample([conn(1, '10.0.1.2', '10.0.1.3', [bytes, 0])], owners, s * 1000)
  }
  const r = a.summary()[0]?.bytesPerSec ?? 0
  t.ok(Math.abs(r - 500) < 50, `steady 500 B/s measured as ${r}`)
  a.sample([], owners, 660_000)
  const faded = a.summary()[0]?.bytesPerSec ?? 0
  t.ok(faded < r * Math.exp(-1) * 1.01 && faded > r * Math.exp(-1) * 0.99, `a minute quiet: 1/e (${faded})`)
  a.sample([], owners, 3_600_000)
  t.same(a.summary(), [], 'an hour quiet: gone')
})

t.test('the summary is bounded, busiest first', async (t) => {
  const many = new Map<string, AddressOwner>([['10.9.0.1', { service: 'client', local: true }]])
  const entries: CtEntry[] = []
  for (let i = 0; i < MAX_PAIRS + 50; i++) {
    many.set(`10.8.${i >> 8}.${i & 255}`, { service: `s${i}`, local: false })
    entries.push(conn(i + 1, '10.9.0.1', `10.8.${i >> 8}.${i & 255}`, [i + 1, 0]))
  }
  const a = new TrafficAccount(60_000)
  a.sample(entries, many, 0)
  const s = a.summary()
  t.equal(s.length, MAX_PAIRS)
  t.equal(s[0]?.to, `s${MAX_PAIRS + 49}`, 'the busiest first')
})
