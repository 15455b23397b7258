// What bench/converge's runs share: the fixture's command line, one JSON call
// to an agent, waiting for a condition, the agents' pids and their /metrics.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { createClient } from '../../src/cli/client.js'
import { REPO } from './report.js'

const CLUSTER = join(REPO, 'netns-fixtures/cluster')

/** one JSON call to an agent (plexctl's client) */
export const call = <T = unknown>(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs?: number,
) => createClient(socket).call<T>(method, path, body, { timeoutMs })

/** netns-fixtures/cluster with args; its stdout */
export const fixture = (args: string[]) =>
  execFileSync(CLUSTER, args, { stdio: ['ignore', 'pipe', 'inherit'] }).toString()

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function until(
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 20,
): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await sleep(everyMs)
  }
}

/** each host's agent process, in host order (0: not running) */
export const agentPidsOf = (name: string) =>
  (
    JSON.parse(fixture(['ls', '--name', name, '-o', 'json'])) as { hosts: { agentPid: number | null }[] }
  ).hosts.map((h) => h.agentPid ?? 0)

/** until every one of sockets sees `hosts` hosts alive */
export const allAlive = (sockets: string[], hosts: number) =>
  until(
    'all hosts see each other',
    async () => {
      const r = await Promise.all(
        sockets.map((s) => call<{ hosts: { state: string }[] }>(s, 'GET', '/v1/hosts')),
      )
      return r.every((x) => x.hosts.filter((h) => h.state === 'alive').length === hosts)
    },
    60_000,
  )

/** the agent's Prometheus text (GET /metrics) */
export const metricsText = (socket: string) => call<string>(socket, 'GET', '/metrics')

/** a series' value from Prometheus text: name and every label given must match (NaN: absent) */
export function seriesValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const has = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] as string, x[2] as string]),
    )
    if (Object.entries(labels).every(([k, v]) => has[k] === v)) return Number(m[3])
  }
  return Number.NaN
}

/** The agent's join, read from its log: process start (store loaded) to the first full sync, and from listening */
export function joinFromLog(logText: string): { joinMs: number; afterListenMs: number } {
  const lines = logText
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { time: string; msg: string })
  const boot = lines.findLast((l) => l.msg === 'store loaded')
  const synced = lines.findLast((l) => l.msg === 'initial sync complete')
  const clusterUp = lines.findLast((l) => l.msg === 'cluster started')
  if (!boot || !synced || !clusterUp)
    throw new Error('joiner log lacks store loaded / cluster started / initial sync complete')
  return {
    joinMs: Date.parse(synced.time) - Date.parse(boot.time),
    afterListenMs: Date.parse(synced.time) - Date.parse(clusterUp.time),
  }
}
