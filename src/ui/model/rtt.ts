// Colours of the map: RTT on a green-amber-red scale, host state, zone. Pure; unit-tested.

/** RTT at or below `low` ms is green, at or above `high` red, amber between */
export function rttColour(ms: number | null, low: number, high: number): string {
  if (ms === null || !Number.isFinite(ms)) return '#8a8f98'
  const t = high > low ? Math.min(1, Math.max(0, (ms - low) / (high - low))) : 0
  // hue 130 (green) to 0 (red); lightness kept for contrast on the light background
  return `hsl(${Math.round(130 * (1 - t))}, 70%, 38%)`
}

/** the scale's ends: the 5th and 95th percentile of the measured RTTs, so one outlier does not flatten it */
export function rttRange(values: (number | null)[]): [number, number] {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b)
  if (xs.length === 0) return [0, 1]
  const at = (q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number
  return [at(0.05), at(0.95)]
}

export const STATE_COLOUR: Record<string, string> = {
  alive: '#1f7a3a',
  suspect: '#b26a00',
  dead: '#b3261e',
}

/** a zone's ring colour: one hue per zone name, stable across reloads */
export function zoneColour(zone: string | undefined): string {
  if (!zone) return '#ffffff'
  let h = 0
  for (const c of zone) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return `hsl(${h % 360}, 60%, 45%)`
}

/** the zone label: Kubernetes' well-known key first, then the short one */
export function zoneOf(labels: Record<string, string>): string | undefined {
  return labels['topology.kubernetes.io/zone'] ?? labels.zone
}
