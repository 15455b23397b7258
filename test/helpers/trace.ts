// plexctl trace and doctor on the netns test bed: the calls both trace tests make, and the
// hop-breaking loop (the datapath repairs what it made within about a second).
import type { Test } from 'tap'
import { hostNs } from '../../netns-fixtures/lib/state.js'
import { type Cluster, run } from './fixture.js'
import { hostApi } from './runner.js'

/**
 * The two containers both trace tests use: c1 (idle) on h1; c2 on h2 serving HTTP on 8080, in the
 * service `web`, its port published as h2:8088. Returns c2's address.
 */
export function startPair(t: Test, c: Cluster): string {
  t.equal(c.run('h1', 'c1', ['sleep', '600']).status, 0, 'c1 on h1')
  const r2 = c.run(
    'h2',
    'c2',
    ['busybox', 'httpd', '-f', '-p', '8080', '-h', '/tmp'],
    ['--service', 'web', '--publish', '8088:8080'],
  )
  t.equal(r2.status, 0, `c2 on h2: ${r2.stderr}`)
  return /: (\d+\.\d+\.\d+\.\d+)\//.exec(r2.stdout)?.[1] as string
}

export interface Hop {
  host: string
  component: string
  action: string
  object: string
  record?: string
  cause?: string
}
export interface Trace {
  hops: Hop[]
  diagnosis: { ok: boolean; hop?: number; line: string }
  probe?: {
    outcome: string
    rttMs?: number
    detail: string
    seen: { host: string; seen: boolean; object: string }[]
  }
  durationMs: number
}
export interface Doctor {
  host: string
  findings: { check: string; status: string; evidence: string }[]
}

/** plexctl -o json on a host; exit 1 (a broken path, a failed check) still prints the answer */
function plexctlAnswer<T>(c: Cluster, host: string, args: string[]): T {
  const r = c.exec(host, ['plexctl', '-o', 'json', ...args])
  if ((r.status !== 0 && r.status !== 1) || !r.stdout.trim())
    throw new Error(`plexctl ${args.join(' ')} failed (${r.status}): ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

export const trace = (c: Cluster, host: string, args: string[]): Trace =>
  plexctlAnswer(c, host, ['trace', ...args])
export const doctor = (c: Cluster, host: string, target: string): Doctor =>
  plexctlAnswer(c, host, ['doctor', '--host', target])
export const finding = (d: Doctor, check: string) => d.findings.find((f) => f.check === check)

/**
 * POST /v1/trace straight to a host's API socket: a hop broken by hand is traced within
 * milliseconds, well before the datapath's next repair
 */
export const apiTrace = (c: Cluster, host: string, body: Record<string, unknown>) =>
  hostApi<Trace>(c, host, 'POST', '/v1/trace', body)

/** GET /v1/doctor?host= the same way: a sysctl the datapath keeps (ip_forward) is read before its repair */
export const apiDoctor = (c: Cluster, host: string, target: string) =>
  hostApi<Doctor>(c, host, 'GET', `/v1/doctor?host=${encodeURIComponent(target)}`)

/** a command in a host's namespace, without the fixture CLI's node start-up */
export const inHost = (c: Cluster, host: string, cmd: string[]) =>
  run('ip', ['netns', 'exec', hostNs(c.name, host), ...cmd])

/** the destination host's part of a healthy path to c2's socket, on every backend */
export const DESTINATION_HOPS = ['h2 host-route', 'h2 firewall', 'h2 veth', 'h2 container', 'h2 socket']

export const broken = (tr: Trace) => (tr.diagnosis.hop === undefined ? undefined : tr.hops[tr.diagnosis.hop])

/**
 * Breaks one hop and traces c1 → c2:8080 from h1 at once over the API socket: the datapath repairs
 * what it made within about a second (netlink events and its passes), so a trace that came after
 * the repair is tried again, up to 5 times.
 */
export async function brokenBy(
  c: Cluster,
  component: string,
  breakIt: () => unknown,
): Promise<Hop | undefined> {
  let hop: Hop | undefined
  for (let i = 0; i < 5 && hop?.component !== component; i++) {
    breakIt()
    hop = broken(await apiTrace(c, 'h1', { src: 'c1', dst: 'c2', port: 8080 }))
  }
  return hop
}
