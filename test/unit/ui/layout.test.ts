import t from 'tap'
import { layoutHosts, type Placeable } from '../../../src/ui/model/layout.js'

const dist = (a: { x: number; y: number }, b: { x: number; y: number }) => Math.hypot(a.x - b.x, a.y - b.y)
const inUnitSquare = (p: { x: number; y: number }) => p.x >= 0 && p.x <= 1 && p.y >= 0 && p.y <= 1

/** 8-dimensional coordinates whose spread lies in dimensions 3 and 6 only (seconds) */
const at = (name: string, a: number, b: number): Placeable => ({
  name,
  coordinate: { vec: [0.001, 0.001, 0.001, a, 0.001, 0.001, b, 0.001] },
})

t.test('hosts near in RTT are drawn near, far ones far, whatever dimensions hold the spread', async (t) => {
  // two zones 40 ms apart, hosts within a zone 1 ms apart
  const hosts = [
    at('a1', 0, 0),
    at('a2', 0.001, 0),
    at('a3', 0, 0.001),
    at('b1', 0.04, 0.03),
    at('b2', 0.041, 0.03),
  ]
  const p = layoutHosts(hosts)
  t.equal(p.size, 5)
  for (const [name, q] of p) t.ok(inUnitSquare(q), `${name} inside the map`)
  const near = dist(p.get('a1')!, p.get('a2')!)
  const far = dist(p.get('a1')!, p.get('b1')!)
  t.ok(far > 10 * near, `zones apart (${far.toFixed(3)}) vs hosts in a zone (${near.toFixed(3)})`)
  // distances keep their ratios (one uniform scale): a1-b1 is 50 ms, a1-a2 1 ms
  t.ok(Math.abs(far / near - 50) < 2, `ratio ${far / near}`)
})

t.test('the layout does not depend on the order of the hosts', async (t) => {
  const hosts = [at('a', 0, 0), at('b', 0.01, 0.002), at('c', 0.003, 0.02), at('d', 0.02, 0.02)]
  const one = layoutHosts(hosts)
  const two = layoutHosts([...hosts].reverse())
  for (const [name, q] of one) {
    t.ok(Math.abs(q.x - two.get(name)!.x) < 1e-9 && Math.abs(q.y - two.get(name)!.y) < 1e-9, name)
  }
})

t.test('without a usable spread the hosts go on a circle, each at its own place', async (t) => {
  for (const hosts of [
    [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
    [at('a', 0, 0), at('b', 0, 0), at('c', 0, 0)],
  ]) {
    const p = layoutHosts(hosts)
    t.equal(p.size, 3)
    const pts = [...p.values()]
    t.ok(pts.every(inUnitSquare))
    t.ok(dist(pts[0]!, pts[1]!) > 0.3 && dist(pts[1]!, pts[2]!) > 0.3, 'spread out')
  }
})

t.test('a host without a coordinate (or of another dimension count) is still drawn', async (t) => {
  const p = layoutHosts([
    at('a', 0, 0),
    at('b', 0.01, 0),
    at('c', 0, 0.01),
    { name: 'new' },
    { name: 'odd', coordinate: { vec: [1, 2] } },
  ])
  t.equal(p.size, 5)
  for (const q of p.values()) t.ok(inUnitSquare(q))
})

t.test('1,000 hosts are laid out in well under a frame budget', async (t) => {
  const hosts = Array.from({ length: 1000 }, (_, i) =>
    at(`h${i}`, (i % 37) / 1000, Math.floor(i / 37) / 1000),
  )
  const start = performance.now()
  const p = layoutHosts(hosts)
  const ms = performance.now() - start
  t.equal(p.size, 1000)
  t.ok(ms < 100, `${ms.toFixed(1)} ms`)
})
