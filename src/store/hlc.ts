import type { Hlc } from './types.js'

// Hybrid logical clock (Kulkarni et al.): versions follow wall time when
// clocks agree and stay causally ordered when they do not. Pure functions;
// HlcClock only holds the last value and the time source.

export const ZERO_HLC: Hlc = { wall: 0, logical: 0 }

/** Total order: wall time first, then the logical counter. */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.logical - b.logical
}

export function maxHlc(a: Hlc, b: Hlc): Hlc {
  return compareHlc(a, b) >= 0 ? a : b
}

/** The version for a local event after `last`, at wall time `now`. */
export function hlcTick(last: Hlc, now: number): Hlc {
  return now > last.wall ? { wall: now, logical: 0 } : { wall: last.wall, logical: last.logical + 1 }
}

/** The clock after receiving `remote`: never behind anything it has seen. */
export function hlcObserve(last: Hlc, remote: Hlc, now: number): Hlc {
  const wall = Math.max(last.wall, remote.wall, now)
  if (wall === last.wall && wall === remote.wall)
    return { wall, logical: Math.max(last.logical, remote.logical) + 1 }
  if (wall === last.wall) return { wall, logical: last.logical + 1 }
  if (wall === remote.wall) return { wall, logical: remote.logical + 1 }
  return { wall, logical: 0 }
}

export class HlcClock {
  private lastValue: Hlc
  constructor(
    private readonly now: () => number,
    last: Hlc = ZERO_HLC,
  ) {
    this.lastValue = last
  }
  get last(): Hlc {
    return this.lastValue
  }
  tick(): Hlc {
    this.lastValue = hlcTick(this.lastValue, Math.floor(this.now()))
    return this.lastValue
  }
  observe(remote: Hlc): void {
    if (compareHlc(remote, this.lastValue) > 0)
      this.lastValue = hlcObserve(this.lastValue, remote, Math.floor(this.now()))
  }
}
