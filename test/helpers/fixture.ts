// Test-side handle on netns-fixtures/cluster: a uniquely named cluster per test,
// torn down in teardown even when the test fails.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ExecWhere, execTarget, FixtureError } from '../../netns-fixtures/lib/exec.js'
import { CLUSTER_PORT, clusterDir, hostNs, UNDERLAY_PREFIX } from '../../netns-fixtures/lib/state.js'

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
export const CLUSTER = join(REPO, 'netns-fixtures/cluster')
export const PLEXCTL = join(REPO, 'dist/bin/plexctl')

export interface RunResult {
  status: number
  stdout: string
  stderr: string
}

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    env: opts.env ?? process.env,
    timeout: 120_000,
  })
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}

/** A short unique cluster name (it prefixes namespace names, so keep it short). */
export function uniqueName(prefix = 't'): string {
  return `${prefix}${randomBytes(3).toString('hex')}`.slice(0, 10)
}

export class Cluster {
  constructor(readonly name: string) {}

  cli(args: string[], input?: string): RunResult {
    return run(CLUSTER, args, { input })
  }

  /** Runs CMD in a host namespace with plexctl on PATH and PLEXUS_SOCKET set for that host. */
  exec(host: string, cmd: string[]): RunResult {
    return this.execIn({ host }, cmd)
  }

  execCtr(ctr: string, cmd: string[]): RunResult {
    return this.execIn({ ctr }, cmd)
  }

  execUnderlay(cmd: string[]): RunResult {
    return this.execIn({ underlay: true }, cmd)
  }

  /**
   * What `cluster exec` does (the same namespace and environment, from netns-fixtures/lib/exec.ts), without
   * starting the fixture's CLI for each command; a target that does not exist fails as the CLI does (status 2).
   */
  private execIn(where: ExecWhere, cmd: string[]): RunResult {
    let target: ReturnType<typeof execTarget>
    try {
      target = execTarget(this.name, where)
    } catch (err) {
      if (!(err instanceof FixtureError)) throw err
      return { status: 2, stdout: '', stderr: `cluster: ${err.message}\n` }
    }
    return run('ip', ['netns', 'exec', target.ns, ...cmd], { env: target.env })
  }

  /** plexctl -o json on a host, parsed. Throws with stderr when plexctl fails. */
  plexctlJson<T = unknown>(host: string, args: string[]): T {
    const r = this.exec(host, ['plexctl', '-o', 'json', ...args])
    if (r.status !== 0)
      throw new Error(`plexctl ${args.join(' ')} on ${host} failed (${r.status}): ${r.stderr}`)
    return JSON.parse(r.stdout) as T
  }

  run(host: string, ctr: string, cmd: string[], extra: string[] = []): RunResult {
    return run(CLUSTER, ['run', '--name', this.name, '--host', host, '--ctr', ctr, ...extra, '--', ...cmd])
  }

  rm(ctr: string): RunResult {
    return run(CLUSTER, ['rm', '--name', this.name, '--ctr', ctr])
  }

  stop(host: string, signal: 'TERM' | 'KILL' = 'TERM'): RunResult {
    return run(CLUSTER, ['stop', '--name', this.name, '--host', host, '--signal', signal])
  }

  start(host: string): RunResult {
    return run(CLUSTER, ['start', '--name', this.name, '--host', host])
  }

  down(): RunResult {
    return run(CLUSTER, ['down', '--name', this.name])
  }
}

/**
 * Agent settings for a test that tests neither lease settling nor anti-entropy timing: a 0.5 s settle
 * period and a 0.5 s sync round instead of 3 s and 2 s. A first lease is confirmed a settle period plus
 * two sync rounds after its claim (src/ipam/README.md), so `up` of a fresh 2-host cluster takes ~9 s
 * instead of ~17 s. Pass as upCluster's agentConfig.
 */
export const QUICK_LEASES = { network: { leaseSettleMs: 500 }, cluster: { syncIntervalMs: 500 } }

interface Teardownable {
  teardown(fn: () => unknown): void
}

/** Brings up a cluster and registers its teardown; throws with the fixture's output if `up` fails. */
export function upCluster(
  t: Teardownable,
  opts: {
    hosts: number
    backend?: 'vxlan' | 'host-gw' | 'wireguard'
    firewall?: string
    prefix?: string
    /** merged over every agent's config (the fixture's --agent-config) */
    agentConfig?: Record<string, unknown>
    /** hosts in zones, in order (the fixture's --zones, e.g. 'a:3,b:3') */
    zones?: string
    /** round trips between zones (the fixture's --zone-rtt, e.g. ['a-b=20ms']) */
    zoneRtt?: string[]
  },
): Cluster {
  const c = new Cluster(uniqueName(opts.prefix))
  t.teardown(() => {
    c.down()
  })
  const args = ['up', '--name', c.name, '--hosts', String(opts.hosts)]
  if (opts.backend) args.push('--backend', opts.backend)
  if (opts.firewall) args.push('--firewall', opts.firewall)
  if (opts.agentConfig) args.push('--agent-config', JSON.stringify(opts.agentConfig))
  if (opts.zones) args.push('--zones', opts.zones)
  for (const rtt of opts.zoneRtt ?? []) args.push('--zone-rtt', rtt)
  const r = c.cli(args)
  if (r.status !== 0) throw new Error(`cluster up failed (${r.status}): ${r.stderr}${r.stdout}`)
  return c
}

/** Polls fn until it returns a truthy value or the time runs out; returns the last value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T = await fn()
  while (!last && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, stepMs))
    last = await fn()
  }
  return last
}

/**
 * Runs the hostile gossip member (test/helpers/gossip-attacker.ts) from host `from`'s namespace, with the
 * cluster key, against host number `to`'s cluster port; what it sends is the test's to check.
 */
export function runGossipAttacker(c: Cluster, from: string, to: number): ReturnType<typeof run> {
  return run('ip', [
    ...['netns', 'exec', hostNs(c.name, from)],
    process.execPath,
    join(REPO, 'dist/test/helpers/gossip-attacker.js'),
    join(clusterDir(c.name), 'cluster.key'),
    `/ip4/${UNDERLAY_PREFIX}.${10 + to}/tcp/${CLUSTER_PORT}`,
  ])
}
