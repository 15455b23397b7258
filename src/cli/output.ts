export type OutputFormat = 'table' | 'json'

/** Renders rows as an aligned table with upper-case headers (kubectl/docker style). */
export function table(headers: string[], rows: (string | number | undefined | null)[][]): string {
  const cells = [
    headers.map((h) => h.toUpperCase()),
    ...rows.map((r) => r.map((c) => (c == null ? '-' : String(c)))),
  ]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return `${cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')}\n`
}

/** "key: value" lines for one object. */
export function keyValues(pairs: [string, unknown][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length))
  return `${pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 2)}${v == null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n')}\n`
}

export function json(data: unknown): string {
  return `${JSON.stringify(data, null, 2)}\n`
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`
}

/** "500ms", "5s", "1m", or a plain number of seconds → milliseconds */
export function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(s)
  if (!m) throw new Error(`"${s}" is not a duration like 500ms, 5s or 1m`)
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000)
}

/** commander's collector for a repeatable option: `--x a --x b` → ["a", "b"] */
export const collect = (v: string, prev: string[]): string[] => [...prev, v]
