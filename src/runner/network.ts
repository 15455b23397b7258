// An allocation's network: a named network namespace attached by the
// installed `plexus` CNI plugin, run exactly as a runtime runs it (CNI_*
// environment, the network config on stdin, the result on stdout). The
// runner is one more runtime to the CNI path: endpoints, DNS, published ports
// and the datapath treat a task like any container.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CLUSTER_NETWORK_NAME } from '../ipam/bridge.js'
import { PlexusError } from '../lib/errors.js'
import type { GroupSpec } from '../scheduler/spec.js'

const run = promisify(execFile)

/** `plx-` and 12 hex digits of the allocation id: unique, short, and a valid interface-free netns name */
export const netnsName = (allocId: string): string =>
  `plx-${createHash('sha256').update(allocId).digest('hex').slice(0, 12)}`

export const netnsPath = (name: string): string => `/run/netns/${name}`

/**
 * `ip netns` keeps names system-wide as bind mounts under /run/netns. An
 * agent started by `ip netns exec` (the test bed) lives in a private copy of
 * the mount namespace whose new mounts never reach the host, so a namespace
 * made there would vanish with the agent and a restarted agent could not
 * find it. Names are therefore made and removed in pid 1's mount namespace
 * (the same one for an agent under systemd) and reach ours by propagation.
 * The podman driver runs podman there too: `ip netns exec` also mounts a
 * fresh /sys, which hides the cgroup hierarchies runc needs.
 */
export function inHostMounts(argv: string[]): string[] {
  let same = true
  try {
    same = readlinkSync('/proc/self/ns/mnt') === readlinkSync('/proc/1/ns/mnt')
  } catch {
    same = true
  }
  return same ? argv : ['nsenter', '--mount=/proc/1/ns/mnt', '--', ...argv]
}

/** the namespace is mounted at its path in this mount namespace (not merely a leftover file) */
export function netnsExists(name: string): boolean {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
  return mounts.split('\n').some((l) => l.split(' ')[4] === netnsPath(name))
}

export async function createNetns(name: string): Promise<string> {
  if (!netnsExists(name)) {
    const [cmd, ...args] = inHostMounts(['ip', 'netns', 'add', name]) as [string, ...string[]]
    try {
      await run(cmd, args)
    } catch (err) {
      throw new PlexusError(
        'PLX_RUNNER_NETNS',
        `ip netns add ${name}: ${(err as { stderr?: string }).stderr ?? err}`,
      )
    }
    // propagation to this mount namespace is asynchronous only in name: wait for it briefly
    for (let i = 0; i < 100 && !netnsExists(name); i++) await new Promise((r) => setTimeout(r, 10))
    if (!netnsExists(name))
      throw new PlexusError('PLX_RUNNER_NETNS', `${netnsPath(name)} did not appear in this mount namespace`)
  }
  // what a runtime does before CNI ADD: the task's own loopback works
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  return netnsPath(name)
}

export async function deleteNetns(name: string): Promise<void> {
  if (!existsSync(netnsPath(name))) return
  const [cmd, ...args] = inHostMounts(['ip', 'netns', 'delete', name]) as [string, ...string[]]
  await run(cmd, args).catch(() => undefined)
}

export interface CniConfig {
  /** directories searched for the `plexus` plugin, as CNI_PATH (default /opt/cni/bin) */
  path: string[]
  /** the agent's API socket the plugin talks to */
  socket: string
}

/** One interface of an allocation: a network it joins. */
export interface Iface {
  /** CNI_IFNAME: eth0, eth1, … in the order of the group's `networks` */
  ifname: string
  /** the named network, as a CNI config's `network` names it; absent: the cluster network */
  network?: string
}

/** The interfaces of a group's allocation, eth0 first (absent `networks`: the cluster network alone). Pure. */
export function interfacesOf(spec: Pick<GroupSpec, 'networks'>): Iface[] {
  return (spec.networks ?? [CLUSTER_NETWORK_NAME]).map((name, i) => ({
    ifname: `eth${i}`,
    ...(name === CLUSTER_NETWORK_NAME ? {} : { network: name }),
  }))
}

export interface CniCall {
  command: 'ADD' | 'DEL' | 'CHECK'
  containerId: string
  /** CNI_IFNAME, and the named network the config points the interface at (absent: the cluster network) */
  iface: Iface
  /** '' for a DEL whose namespace is gone */
  netns: string
  /** CNI_ARGS pairs */
  args: Record<string, string>
  /** the ADD result, handed to DEL and CHECK as prevResult */
  prevResult?: unknown
  /** `args.plexus` of the network config: what CNI_ARGS cannot carry (a service's ports and checks, gateway, routes) */
  plexus?: Record<string, unknown>
  /** `args.cni` (CNI conventions): the group's static address (`ips`) and MAC */
  cni?: Record<string, unknown>
  /** `runtimeConfig.portMappings`, as podman's `-p` hands them: the group's published ports */
  portMappings?: { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[]
}

/**
 * The network config on the plugin's stdin: the shipped conflist's plugin entry, pointed at our socket
 * and, for a named network, at that network (its `network` field, as an operator's config names one).
 */
export function netconf(
  c: CniConfig,
  call: Pick<CniCall, 'prevResult' | 'plexus' | 'cni' | 'portMappings'> & { iface?: Iface } = {},
): Record<string, unknown> {
  const args = { ...(call.cni ? { cni: call.cni } : {}), ...(call.plexus ? { plexus: call.plexus } : {}) }
  return {
    cniVersion: '1.1.0',
    name: 'plexus',
    type: 'plexus',
    socket: c.socket,
    ...(call.iface?.network ? { network: call.iface.network } : {}),
    ...(Object.keys(args).length ? { args } : {}),
    ...(call.portMappings?.length ? { runtimeConfig: { portMappings: call.portMappings } } : {}),
    ...(call.prevResult ? { prevResult: call.prevResult } : {}),
  }
}

export function pluginPath(c: CniConfig): string {
  const found = c.path.map((d) => join(d, 'plexus')).find((p) => existsSync(p))
  if (!found)
    throw new PlexusError('PLX_RUNNER_NO_PLUGIN', `the plexus CNI plugin is not in ${c.path.join(':')}`)
  return found
}

/** Runs the plugin once; its JSON result, or a PLX_RUNNER_CNI error carrying the plugin's CNI error. */
export function cni(c: CniConfig, call: CniCall): Promise<Record<string, unknown> | undefined> {
  const plugin = pluginPath(c)
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.iface.ifname,
    CNI_PATH: c.path.join(':'),
    CNI_ARGS: ['IgnoreUnknown=1', ...Object.entries(call.args).map(([k, v]) => `${k}=${v}`)].join(';'),
  }
  return new Promise((resolve, reject) => {
    const child = execFile(plugin, [], { env, timeout: 60_000 }, (err, stdout) => {
      const text = stdout.trim()
      let out: Record<string, unknown> | undefined
      try {
        out = text ? (JSON.parse(text) as Record<string, unknown>) : undefined
      } catch {
        out = undefined
      }
      if (!err) return resolve(out)
      const msg = (out?.msg as string | undefined) ?? text ?? String(err)
      const on = `${call.iface.ifname} (network ${call.iface.network ?? CLUSTER_NETWORK_NAME})`
      reject(
        new PlexusError('PLX_RUNNER_CNI', `CNI ${call.command} of ${on} failed: ${msg}`, {
          cniCode: out?.code,
        }),
      )
    })
    child.stdin?.end(JSON.stringify(netconf(c, call)))
  })
}

/** CNI_ARGS naming the allocation: the name DNS answers for it (`<alloc>.ctr…`) */
export const nameArgs = (allocId: string): Record<string, string> => ({
  K8S_POD_NAME: allocId,
  PLEXUS_NAME: allocId,
})

/** What ADD asks for one interface (with the command, the container id and the namespace added). */
export type AttachCall = Pick<CniCall, 'iface' | 'args' | 'plexus' | 'cni' | 'portMappings'>

/**
 * What CNI ADD is asked for each interface of an allocation, eth0 first, as a runtime asks. Every
 * interface carries the allocation's name (`PLEXUS_NAME`: the endpoint of each is `<alloc>`, not the
 * container id's first characters). The rest is the first interface's alone, as one container has one
 * of each: its service (`PLEXUS_SERVICE`, and its ports and checks in `args.plexus`, which CNI_ARGS
 * cannot carry: the endpoint record keeps them, so the services module checks this allocation as its
 * version of the job declared it), the published ports (`runtimeConfig.portMappings`, what podman's
 * `-p` hands the plugin) and the group's `network` addressing (`ip` and `mac` in `args.cni`, `gateway`
 * and `routes` in `args.plexus`). Pure.
 */
export function attachCalls(allocId: string, spec: GroupSpec): AttachCall[] {
  const names = nameArgs(allocId)
  const svc = spec.service
  const net = spec.network
  const plexus = {
    ...(svc?.ports?.length ? { ports: svc.ports } : {}),
    ...(svc?.checks?.length ? { checks: svc.checks } : {}),
    ...(net?.gateway ? { gateway: net.gateway } : {}),
    ...(net?.routes?.length ? { routes: net.routes } : {}),
  }
  const cni = { ...(net?.ip ? { ips: [net.ip] } : {}), ...(net?.mac ? { mac: net.mac } : {}) }
  const [first, ...further] = interfacesOf(spec)
  if (!first) return []
  return [
    {
      iface: first,
      args: { ...names, ...(svc ? { PLEXUS_SERVICE: svc.name } : {}) },
      ...(Object.keys(plexus).length ? { plexus } : {}),
      ...(Object.keys(cni).length ? { cni } : {}),
      ...(spec.ports?.length ? { portMappings: spec.ports } : {}),
    },
    ...further.map((iface) => ({ iface, args: names })),
  ]
}

/** The first IP address of a CNI result (what `plexctl allocs` shows). */
export function resultAddress(result: unknown): string | undefined {
  const ips = (result as { ips?: { address?: string }[] } | undefined)?.ips
  return ips?.[0]?.address?.split('/')[0]
}

/**
 * The resolv.conf a runtime writes from a CNI result's `dns` (nameservers,
 * search, options), or undefined when the result carries none. Pure.
 */
export function resolvConfText(result: unknown): string | undefined {
  const dns = (
    result as { dns?: { nameservers?: string[]; search?: string[]; options?: string[] } } | undefined
  )?.dns
  if (!dns?.nameservers?.length) return undefined
  const lines = [
    ...dns.nameservers.map((n) => `nameserver ${n}`),
    ...(dns.search?.length ? [`search ${dns.search.join(' ')}`] : []),
    ...(dns.options?.length ? [`options ${dns.options.join(' ')}`] : []),
  ]
  return `${lines.join('\n')}\n`
}
