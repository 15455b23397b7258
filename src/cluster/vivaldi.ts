// Vivaldi network coordinates, Serf's variant (hashicorp/serf coordinate/):
// a Euclidean vector plus a height (access-link latency), an error estimate
// that sets an adaptive timestep, a per-peer median latency filter, an
// adjustment term from recent residuals, and weak gravity toward the origin.
// Pure: state in, state out; randomness is injected.

export interface Coordinate {
  vec: number[]
  /** seconds */
  height: number
  error: number
  /** seconds */
  adjustment: number
}

export interface VivaldiConfig {
  dimensionality: number
  errorMax: number
  ce: number
  cc: number
  adjustmentWindow: number
  heightMin: number
  latencyFilterSize: number
  gravityRho: number
}

/** Serf's defaults. */
export const DEFAULT_VIVALDI: VivaldiConfig = {
  dimensionality: 8,
  errorMax: 1.5,
  ce: 0.25,
  cc: 0.25,
  adjustmentWindow: 20,
  heightMin: 10e-6,
  latencyFilterSize: 3,
  gravityRho: 150,
}

const ZERO = 1.0e-6
/** RTTs above this are measurement errors, not distances (Serf: 10 s) */
const MAX_RTT_S = 10

export function newCoordinate(cfg: VivaldiConfig = DEFAULT_VIVALDI): Coordinate {
  return {
    vec: new Array(cfg.dimensionality).fill(0),
    height: cfg.heightMin,
    error: cfg.errorMax,
    adjustment: 0,
  }
}

const magnitude = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0))
const diff = (a: number[], b: number[]) => a.map((x, i) => x - (b[i] ?? 0))

// allocation-free: the scheduler asks for thousands of distances per placement
function rawDistance(a: Coordinate, b: Coordinate): number {
  let sum = 0
  for (let i = 0; i < a.vec.length; i++) {
    const d = (a.vec[i] as number) - (b.vec[i] ?? 0)
    sum += d * d
  }
  return Math.sqrt(sum) + a.height + b.height
}

/** Estimated RTT in seconds between two coordinates (adjustments included when they do not make it negative). */
export function distance(a: Coordinate, b: Coordinate): number {
  const d = rawDistance(a, b)
  const adjusted = d + a.adjustment + b.adjustment
  return adjusted > 0 ? adjusted : d
}

export function isCompatible(a: Coordinate, b: Coordinate): boolean {
  return a.vec.length === b.vec.length
}

function isValid(c: Coordinate): boolean {
  return [...c.vec, c.height, c.error, c.adjustment].every(Number.isFinite)
}

/** a coordinate that arrived by gossip (outside input): the shape, and every figure finite */
export function isCoordinate(c: unknown): c is Coordinate {
  const o = c as Partial<Coordinate> | null
  return (
    typeof o === 'object' &&
    o !== null &&
    Array.isArray(o.vec) &&
    o.vec.length <= 64 &&
    o.vec.every((x) => typeof x === 'number') &&
    [o.height, o.error, o.adjustment].every((x) => typeof x === 'number') &&
    isValid(o as Coordinate)
  )
}

function unitVectorAt(a: number[], b: number[], rng: () => number): [number[], number] {
  const d = diff(a, b)
  const mag = magnitude(d)
  if (mag > ZERO) return [d.map((x) => x / mag), mag]
  // same spot: push in a random direction so coincident nodes separate
  const r = d.map(() => rng() - 0.5)
  const rmag = magnitude(r)
  if (rmag > ZERO) return [r.map((x) => x / rmag), 0]
  return [d.map((_, i) => (i === 0 ? 1 : 0)), 0]
}

function applyForce(c: Coordinate, cfg: VivaldiConfig, force: number, other: Coordinate, rng: () => number) {
  const [unit, mag] = unitVectorAt(c.vec, other.vec, rng)
  const vec = c.vec.map((x, i) => x + (unit[i] ?? 0) * force)
  let height = c.height
  if (mag > ZERO) height = Math.max(((c.height + other.height) * force) / mag + c.height, cfg.heightMin)
  return { ...c, vec, height }
}

/** One host's Vivaldi client: its coordinate plus the per-peer filters. */
export interface VivaldiState {
  coord: Coordinate
  origin: Coordinate
  adjustmentSamples: number[]
  adjustmentIndex: number
  latency: Map<string, number[]>
  resets: number
}

export function newVivaldiState(cfg: VivaldiConfig = DEFAULT_VIVALDI): VivaldiState {
  return {
    coord: newCoordinate(cfg),
    origin: newCoordinate(cfg),
    adjustmentSamples: new Array(cfg.adjustmentWindow).fill(0),
    adjustmentIndex: 0,
    latency: new Map(),
    resets: 0,
  }
}

/**
 * Feeds one RTT observation of `peer` (whose coordinate is `other`).
 * Returns the new state; invalid input (incompatible, negative or huge RTT)
 * leaves the state unchanged.
 */
export function observe(
  s: VivaldiState,
  peer: string,
  other: Coordinate,
  rttMs: number,
  rng: () => number,
  cfg: VivaldiConfig = DEFAULT_VIVALDI,
): VivaldiState {
  const rawRtt = rttMs / 1000
  if (!isCompatible(s.coord, other) || !isValid(other) || !(rawRtt >= 0) || rawRtt > MAX_RTT_S) return s
  // latency filter: median of the last few samples from this peer
  const samples = [...(s.latency.get(peer) ?? []), rawRtt].slice(-cfg.latencyFilterSize)
  const latency = new Map(s.latency).set(peer, samples)
  const rtt = Math.max([...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)] as number, ZERO)

  // Vivaldi step, timestep scaled by our confidence relative to theirs
  let coord = s.coord
  const dist = distance(coord, other)
  const wrongness = Math.abs(dist - rtt) / rtt
  const totalError = Math.max(coord.error + other.error, ZERO)
  const weight = coord.error / totalError
  const error = Math.min(cfg.ce * weight * wrongness + coord.error * (1 - cfg.ce * weight), cfg.errorMax)
  coord = applyForce({ ...coord, error }, cfg, cfg.cc * weight * (rtt - dist), other, rng)

  // adjustment: mean residual over a window, halved (each side carries half)
  const adjustmentSamples = [...s.adjustmentSamples]
  adjustmentSamples[s.adjustmentIndex] = rtt - rawDistance(coord, other)
  const adjustmentIndex = (s.adjustmentIndex + 1) % cfg.adjustmentWindow
  coord = { ...coord, adjustment: adjustmentSamples.reduce((a, b) => a + b, 0) / (2 * cfg.adjustmentWindow) }

  // gravity keeps the whole system from drifting away from the origin
  const g = distance(s.origin, coord)
  coord = applyForce(coord, cfg, -((g / cfg.gravityRho) ** 2), s.origin, rng)

  if (!isValid(coord)) return { ...newVivaldiState(cfg), latency, resets: s.resets + 1 }
  return { ...s, coord, adjustmentSamples, adjustmentIndex, latency }
}

/** Deletes the filter state of a peer that left. */
export function forgetPeer(s: VivaldiState, peer: string): VivaldiState {
  if (!s.latency.has(peer)) return s
  const latency = new Map(s.latency)
  latency.delete(peer)
  return { ...s, latency }
}
