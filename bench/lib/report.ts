// Shared by every benchmark (contract: ../shared/BENCH.md): statistics, progress
// on stderr, one JSON line on stdout, and the copy kept in bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/** Quantile by linear interpolation between closest ranks; q in [0, 1]. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo)
}

export const median = (v: number[]) => quantile(v, 0.5)

/** Rounds for printing without losing meaning (3 significant decimals). */
export function round(n: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

export function progress(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

/** When and on what a run was made: the README's table shows it next to every figure. */
export function runFacts(): Record<string, number | string> {
  const cpu = cpus()
  return {
    date: new Date().toISOString().slice(0, 10),
    machine_cores: cpu.length,
    machine_model: cpu[0]?.model.trim() ?? 'unknown',
    load_avg_1m: round(loadavg()[0] ?? 0, 2),
    node: process.version,
  }
}

/**
 * Prints the one JSON line (last on stdout) and keeps it in bench/results/<file>.json (file: the
 * bench's name; a part of a bench run alone keeps its line beside the whole run's, `<bench>-<part>`).
 */
export function report(
  bench: string,
  fields: Record<string, number | string | boolean | null>,
  file = bench,
): void {
  const line = JSON.stringify({ bench, ...runFacts(), ...fields })
  const dir = join(REPO, 'bench/results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, `${file}.json`), `${line}\n`)
  process.stdout.write(`${line}\n`)
}
