// When to render after changes: consul-template's `wait` (a quiet period, and
// a bound on how long a stream of changes may hold a render back). Pure: the
// caller passes the clock.
import { parseDuration } from '../output.js'

export interface Wait {
  /** render once nothing has changed for this long */
  minMs: number
  /** but never later than this after the first change not yet rendered */
  maxMs: number
}

/**
 * The default: a burst of writes (a deploy, a loader) is one render, and a
 * single change shows within 250 ms.
 */
export const DEFAULT_WAIT: Wait = { minMs: 250, maxMs: 1000 }

/** "MIN:MAX" or "MIN" (MAX = 4 × MIN, as consul-template), each like 250ms, 2s or 1m. */
export function parseWait(text: string): Wait {
  const [min, max, ...rest] = text.split(':')
  if (min === undefined || rest.length) throw new Error(`--wait "${text}": use MIN[:MAX], e.g. 250ms:1s`)
  const minMs = parseDuration(min)
  const maxMs = max === undefined ? 4 * minMs : parseDuration(max)
  if (maxMs < minMs) throw new Error(`--wait "${text}": MAX must not be below MIN`)
  return { minMs, maxMs }
}

/** The changes not yet rendered: when the first and the last of them came. */
export class Pending {
  private first: number | undefined
  private last: number | undefined

  constructor(private readonly wait: Wait) {}

  /** a change at `now`; returns when to render */
  change(now: number): number {
    this.first ??= now
    this.last = now
    return this.due() as number
  }

  /** when to render what is pending (the quiet period ends, or the bound from the first change), or undefined: nothing is */
  due(): number | undefined {
    if (this.first === undefined || this.last === undefined) return undefined
    return Math.min(this.last + this.wait.minMs, this.first + this.wait.maxMs)
  }

  /** true when a render is due at `now`: what is pending is then taken (changes after it start a new wait) */
  take(now: number): boolean {
    const due = this.due()
    if (due === undefined || now < due) return false
    this.first = this.last = undefined
    return true
  }
}
