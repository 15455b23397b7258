// Runs the real bundled plugin (dist/cni/bin/plexus) as a runtime does: in the
// host's namespace, CNI_* in the environment, the network config on stdin.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Cluster, REPO, run } from '../../helpers/fixture.js'

export const PLUGIN = join(REPO, 'dist/cni/bin/plexus')

export interface PluginRun {
  status: number
  out: Record<string, unknown> | undefined
  raw: string
  stderr: string
}

export interface CniCall {
  command: string
  containerId?: string
  netns?: string
  ifname?: string
  args?: string
  /** extra or overriding environment (undefined values remove a variable) */
  env?: Record<string, string | undefined>
}

export function socketOf(c: Cluster, host: string): string {
  return `/run/plexus-fixture/${c.name}/${host}/run/plexusd.sock`
}

export function hostNs(c: Cluster, host: string): string {
  return `${c.name}-${host}`
}

export function netconf(
  c: Cluster,
  host: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'plexus', type: 'plexus', socket: socketOf(c, host), ...extra }
}

/** Invokes a plugin binary (ours by default); stdin is the JSON of `conf` (or the raw string given). */
export function plugin(c: Cluster, host: string, call: CniCall, conf: unknown, binary = PLUGIN): PluginRun {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifname ?? 'eth0',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: call.args ?? 'IgnoreUnknown=1',
    ...call.env,
  }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  const input = typeof conf === 'string' ? conf : JSON.stringify(conf)
  const r = run('ip', ['netns', 'exec', hostNs(c, host), binary], { input, env: env as NodeJS.ProcessEnv })
  let out: Record<string, unknown> | undefined
  try {
    out = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined
  } catch {
    out = undefined
  }
  return { status: r.status, out, raw: r.stdout, stderr: r.stderr }
}

/** A reference plugin from Debian's containernetworking-plugins, invoked the same way. */
export const refPlugin = (c: Cluster, host: string, type: string, call: CniCall, conf: unknown): PluginRun =>
  plugin(c, host, call, conf, join('/usr/lib/cni', type))

/** Allocations the host's agent holds (its persisted ipam state). */
export function allocations(
  c: Cluster,
  host: string,
): { containerId: string; ifname: string; address: string }[] {
  const file = `/run/plexus-fixture/${c.name}/${host}/state/ipam/allocations.json`
  if (!existsSync(file)) return []
  return (JSON.parse(readFileSync(file, 'utf8')) as { allocations: [] }).allocations
}

/** Host-side veths Plexus made in a host namespace. */
export function hostVeths(c: Cluster, host: string): string[] {
  return run('ip', ['-n', hostNs(c, host), '-o', 'link', 'show'])
    .stdout.split('\n')
    .flatMap((l) => {
      const m = /^\d+: (plx[0-9a-f]+)[@:]/.exec(l)
      return m?.[1] ? [m[1]] : []
    })
}

/** A throwaway container namespace, removed in teardown even when the test fails. */
export function containerNs(t: { teardown(fn: () => unknown): void }, name: string): string {
  const r = run('ip', ['netns', 'add', name])
  if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`)
  t.teardown(() => {
    run('ip', ['netns', 'delete', name])
  })
  return `/run/netns/${name}`
}

/** Waits until the host's agent holds a lease and its datapath made plexus0. */
export async function waitReady(
  c: Cluster,
  host: string,
  timeoutMs = 20_000,
): Promise<{ subnet: string; gateway: string }> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = plugin(c, host, { command: 'STATUS' }, netconf(c, host))
    const bridge = run('ip', ['-n', hostNs(c, host), 'link', 'show', 'plexus0']).status === 0
    if (status.status === 0 && bridge) break
    if (Date.now() > deadline) throw new Error(`host ${host} not ready: ${status.raw} bridge=${bridge}`)
    await new Promise((res) => setTimeout(res, 200))
  }
  const subnets = c.plexctlJson<{ leases: { subnet: string; host: string }[] }>(host, ['subnets'])
  const subnet = subnets.leases.find((l) => l.host === host)?.subnet
  if (!subnet) throw new Error(`no lease for ${host}`)
  return { subnet, gateway: subnet.replace(/\.0\/\d+$/, '.1') }
}

/**
 * The host's firewall as text, whichever backend the agent uses, without
 * comments and counters, so two readings compare equal when the rules are.
 */
export function firewallText(c: Cluster, host: string): string {
  const cmd = 'iptables-save 2>/dev/null; nft list ruleset 2>/dev/null'
  return run('ip', ['netns', 'exec', hostNs(c, host), 'sh', '-c', cmd])
    .stdout.split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '').replace(/packets \d+ bytes \d+/g, ''))
    .join('\n')
}
