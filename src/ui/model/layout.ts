// Where the map draws each host: its Vivaldi coordinate (Serf's variant, 8 dimensions) projected
// onto the plane that keeps the most of the hosts' spread (the two principal components), so
// hosts close in RTT are drawn close. Pure: no DOM, unit-tested in test/unit/ui/layout.test.ts.

export interface Placeable {
  name: string
  coordinate?: { vec: number[] }
}

export interface Point {
  x: number
  y: number
}

/** spread below this (seconds² of RTT) is treated as none: coordinates that have not moved yet */
const FLAT = 1e-18
const POWER_STEPS = 60

function dot(a: number[], b: number[]): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number)
  return s
}

function normalised(v: number[]): number[] {
  const n = Math.sqrt(dot(v, v))
  return n > 0 ? v.map((x) => x / n) : v
}

/** the dominant eigenvector of a symmetric matrix (power iteration) and its eigenvalue */
function dominant(m: number[][], start: number[]): [number[], number] {
  let v = normalised(start)
  for (let step = 0; step < POWER_STEPS; step++) {
    const next = normalised(m.map((row) => dot(row, v)))
    if (dot(next, next) === 0) return [v, 0]
    v = next
  }
  return [
    v,
    dot(
      v,
      m.map((row) => dot(row, v)),
    ),
  ]
}

/** hosts on a circle, by name: the layout when coordinates are missing or have no spread yet */
function circle(names: string[]): Map<string, Point> {
  const out = new Map<string, Point>()
  const sorted = [...names].sort()
  sorted.forEach((name, i) => {
    const a = (2 * Math.PI * i) / Math.max(sorted.length, 1) - Math.PI / 2
    out.set(
      name,
      sorted.length === 1 ? { x: 0.5, y: 0.5 } : { x: 0.5 + 0.45 * Math.cos(a), y: 0.5 + 0.45 * Math.sin(a) },
    )
  })
  return out
}

/**
 * Positions in [0, 1]² for every host: the coordinates' two principal components, scaled
 * uniformly (distances keep their ratios) and centred. Hosts without a usable coordinate
 * (none published, or another dimension count than most) go on a ring around the rest.
 */
export function layoutHosts(hosts: Placeable[]): Map<string, Point> {
  const dims = mostCommonDims(hosts)
  const placed = hosts.filter((h) => h.coordinate?.vec.length === dims && dims > 0)
  const isPlaced = new Set(placed)
  const rest = hosts.filter((h) => !isPlaced.has(h)).map((h) => h.name)
  if (placed.length < 2) return circle(hosts.map((h) => h.name))

  const vecs = placed.map((h) => (h.coordinate as { vec: number[] }).vec)
  const mean = new Array<number>(dims)
    .fill(0)
    .map((_, i) => vecs.reduce((s, v) => s + (v[i] as number), 0) / vecs.length)
  const centred = vecs.map((v) => v.map((x, i) => x - (mean[i] as number)))
  const cov = mean.map((_, i) =>
    mean.map((_, j) => centred.reduce((s, v) => s + (v[i] as number) * (v[j] as number), 0)),
  )
  // a fixed, non-axis start so the result does not depend on the order of the hosts
  const [first, l1] = dominant(
    cov,
    mean.map((_, i) => 1 + i / dims),
  )
  if (l1 < FLAT) return circle(hosts.map((h) => h.name))
  const deflated = cov.map((row, i) =>
    row.map((x, j) => x - l1 * (first[i] as number) * (first[j] as number)),
  )
  const [second] = dominant(
    deflated,
    mean.map((_, i) => (i % 2 === 0 ? 1 : -1) * (1 + i)),
  )

  const raw = centred.map((v) => ({ x: dot(v, first), y: dot(v, second) }))
  const xs = raw.map((p) => p.x)
  const ys = raw.map((p) => p.y)
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)]
  const span = Math.max(maxX - minX, maxY - minY) || 1
  // the inner 80 %: the ring of hosts without coordinates goes outside it
  const inner = rest.length > 0 ? 0.7 : 0.9
  const out = new Map<string, Point>()
  placed.forEach((h, i) => {
    const p = raw[i] as Point
    out.set(h.name, {
      x: 0.5 + ((p.x - (minX + maxX) / 2) / span) * inner,
      y: 0.5 + ((p.y - (minY + maxY) / 2) / span) * inner,
    })
  })
  for (const [name, p] of circle(rest)) out.set(name, rest.length === 1 ? { x: 0.97, y: 0.03 } : p)
  return out
}

function mostCommonDims(hosts: Placeable[]): number {
  const counts = new Map<number, number>()
  for (const h of hosts) {
    const n = h.coordinate?.vec.length
    if (n) counts.set(n, (counts.get(n) ?? 0) + 1)
  }
  let best = 0
  let bestCount = 0
  for (const [n, c] of counts)
    if (c > bestCount) {
      best = n
      bestCount = c
    }
  return best
}
