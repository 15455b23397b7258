// Zones in the test bed: hosts of different zones reach each other through a delay line
// (zone-switch.c), hosts of one zone directly. Each zone has its own underlay bridge in the
// underlay namespace; the first zone's is br0, which also holds the gateway and the stub DNS.
// The switch holds each frame between zones for half the pair's round trip, so ping between zones
// is the configured RTT and ping within a zone is what it is without zones.
import { spawn } from 'node:child_process'
import { existsSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ipNs, sleep } from './sh.js'
import { type ClusterState, clusterDir, underlayNs, type ZoneSpec } from './state.js'

const ZONE_RE = /^[a-z][a-z0-9]{0,7}$/

/**
 * `--zones a:3,b:3` and `--zone-rtt a-b=20ms` (repeatable, or comma-separated) into a ZoneSpec, and
 * the zone of each host in order (h1..h3 in a, h4..h6 in b). Every error names the argument.
 */
export function parseZones(
  zones: string,
  rtts: string[],
  hosts: number,
): { spec: ZoneSpec; hostZones: string[] } {
  const names: string[] = []
  const hostZones: string[] = []
  for (const part of zones.split(',')) {
    const m = /^([^:]+):(\d+)$/.exec(part.trim())
    if (!m) throw new Error(`--zones wants NAME:COUNT[,NAME:COUNT...], got "${part}"`)
    const [, name, count] = m as unknown as [string, string, string]
    if (!ZONE_RE.test(name)) throw new Error(`zone "${name}" must match ${ZONE_RE}`)
    if (names.includes(name)) throw new Error(`zone "${name}" is given twice`)
    if (names.length === 8) throw new Error('at most 8 zones')
    names.push(name)
    for (let i = 0; i < Number(count); i++) hostZones.push(name)
  }
  if (names.length < 2) throw new Error('--zones wants at least two zones')
  if (hostZones.length !== hosts)
    throw new Error(`--zones places ${hostZones.length} hosts but --hosts is ${hosts}`)
  const rttMs: Record<string, number> = {}
  for (const item of rtts.flatMap((r) => r.split(','))) {
    const m = /^([^-]+)-([^=]+)=(\d+(?:\.\d+)?)(ms)?$/.exec(item.trim())
    if (!m) throw new Error(`--zone-rtt wants A-B=MSms, got "${item}"`)
    const [, a, b, ms] = m as unknown as [string, string, string, string]
    if (!names.includes(a) || !names.includes(b) || a === b)
      throw new Error(`--zone-rtt "${item}" must name two different zones of --zones`)
    if (Number(ms) > 10_000) throw new Error(`--zone-rtt "${item}": at most 10000 ms`)
    rttMs[pairKey(a, b)] = Number(ms)
  }
  return { spec: { names, rttMs }, hostZones }
}

/** one key per unordered pair */
export function pairKey(a: string, b: string): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`
}

/** the underlay bridge a host of this zone is attached to */
export function zoneBridge(c: ClusterState, zone: string | undefined): string {
  return !zone || !c.zones || zone === c.zones.names[0] ? 'br0' : `br-${zone}`
}

/**
 * The other zones' bridges and the switch between all of them, in the underlay namespace. The switch
 * dies with the namespace's processes at `down`, and its TAP devices with it.
 */
export async function makeZones(c: ClusterState, switchBin: string): Promise<void> {
  const z = c.zones
  if (!z) return
  if (!existsSync(switchBin)) throw new Error(`${switchBin} is missing: run 'make build' first`)
  const u = underlayNs(c.name)
  for (const name of z.names.slice(1)) {
    ipNs(u, 'link', 'add', zoneBridge(c, name), 'type', 'bridge')
    ipNs(u, 'link', 'set', zoneBridge(c, name), 'up')
  }
  const logFile = join(clusterDir(c.name), 'zone-switch.log')
  const log = openSync(logFile, 'a')
  const args = [
    ...z.names.flatMap((n) => ['--zone', n]),
    ...Object.entries(z.rttMs).flatMap(([pair, ms]) => ['--rtt', `${pair}=${ms}`]),
  ]
  spawn('ip', ['netns', 'exec', u, switchBin, ...args], {
    detached: true,
    stdio: ['ignore', log, log],
  }).unref()
  const deadline = Date.now() + 5000
  while (!readFileSync(logFile, 'utf8').includes('ready')) {
    if (Date.now() > deadline) throw new Error(`zone switch did not start: ${readFileSync(logFile, 'utf8')}`)
    await sleep(20)
  }
  for (const name of z.names) ipNs(u, 'link', 'set', `zs-${name}`, 'master', zoneBridge(c, name), 'up')
}
