import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Everything the fixture made is recorded under here, so `down` can undo it even after a crash. */
export const FIXTURE_ROOT = process.env.PLEXUS_FIXTURE_ROOT ?? '/run/plexus-fixture'

export const UNDERLAY_PREFIX = '192.0.2'
export const UNDERLAY_GATEWAY = `${UNDERLAY_PREFIX}.1`
export const CLUSTER_PORT = 7373

export interface HostState {
  name: string
  ns: string
  ip: string
  dir: string
  socket: string
  /** merged over the cluster's agentConfig for this host only (`join --agent-config`) */
  agentConfig?: Record<string, unknown>
  /** its zone (`up --zones`): the agent's `zone` label and its underlay bridge */
  zone?: string
}

/** `up --zones a:3,b:3 --zone-rtt a-b=20ms`: the zones in order, and the round trip of each pair */
export interface ZoneSpec {
  names: string[]
  /** by "a-b" with a < b; a pair not given has no delay */
  rttMs: Record<string, number>
}

export interface ClusterState {
  name: string
  backend: 'vxlan' | 'host-gw' | 'wireguard'
  cidr: string
  firewall: string
  /** merged over every host's generated plexusd config (sections merged one level deep) */
  agentConfig: Record<string, unknown>
  hosts: HostState[]
  zones?: ZoneSpec
  createdAt: string
}

export interface CtrState {
  name: string
  host: string
  ns: string
  containerId: string
  ifname: string
  netconf: string
  result?: unknown
  pid?: number
}

export const clusterDir = (name: string) => join(FIXTURE_ROOT, name)
export const ctrDir = (name: string) => join(clusterDir(name), 'ctrs')
export const hostNs = (cluster: string, host: string) => `${cluster}-${host}`
export const underlayNs = (cluster: string) => `${cluster}-underlay`
export const ctrNs = (cluster: string, ctr: string) => `${cluster}-${ctr}`

function writeJson(path: string, data: unknown): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`)
  renameSync(tmp, path)
}

export function loadCluster(name: string): ClusterState | undefined {
  const p = join(clusterDir(name), 'cluster.json')
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as ClusterState) : undefined
}

export function saveCluster(c: ClusterState): void {
  mkdirSync(clusterDir(c.name), { recursive: true })
  writeJson(join(clusterDir(c.name), 'cluster.json'), c)
}

export function listClusters(): string[] {
  return existsSync(FIXTURE_ROOT) ? readdirSync(FIXTURE_ROOT).sort() : []
}

export function loadCtr(cluster: string, ctr: string): CtrState | undefined {
  const p = join(ctrDir(cluster), `${ctr}.json`)
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as CtrState) : undefined
}

export function saveCtr(cluster: string, c: CtrState): void {
  mkdirSync(ctrDir(cluster), { recursive: true })
  writeJson(join(ctrDir(cluster), `${c.name}.json`), c)
}

export function removeCtr(cluster: string, ctr: string): void {
  rmSync(join(ctrDir(cluster), `${ctr}.json`), { force: true })
  rmSync(join(ctrDir(cluster), `${ctr}.log`), { force: true })
}

export function listCtrs(cluster: string): CtrState[] {
  const d = ctrDir(cluster)
  if (!existsSync(d)) return []
  return readdirSync(d)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as CtrState)
    .sort((a, b) => a.name.localeCompare(b.name))
}
