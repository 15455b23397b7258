// The Plexus test bed: a whole cluster on one machine. Each host is a network
// namespace on an underlay bridge (in its own namespace) running a real plexusd;
// each container is a namespace attached through the real CNI plugin, exactly
// as a runtime would. Used by tests, benchmarks and `make demo`. See README.md.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, Option } from 'commander'
import { createClient } from '../src/cli/client.js'
import { newClusterKey } from '../src/lib/cluster-key.js'
import { cleanupRunner } from '../src/runner/cleanup.js'
import { resolvConfText } from '../src/runner/network.js'
import { cgroupMountScript } from './lib/cgroups.js'
import { type ExecWhere, envFor, execTarget, FixtureError, hostOf, need, requireCluster } from './lib/exec.js'
import {
  alive,
  ipNs,
  killAll,
  listNetns,
  netnsPids,
  procStart,
  sh,
  shQuiet,
  signalName,
  sleep,
} from './lib/sh.js'
import {
  CLUSTER_PORT,
  type ClusterState,
  type CtrState,
  clusterDir,
  ctrDir,
  ctrNs,
  type HostState,
  hostNs,
  listClusters,
  listCtrs,
  loadCluster,
  loadCtr,
  removeCtr,
  saveCluster,
  saveCtr,
  UNDERLAY_GATEWAY,
  UNDERLAY_PREFIX,
  underlayNs,
} from './lib/state.js'
import { makeZones, parseZones, zoneBridge } from './lib/zones.js'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const DIST = join(REPO, 'dist')
const AGENT_JS = join(DIST, 'src/agent/main.js')
const CNI_PLUGIN = join(DIST, 'cni/bin/plexus')
const STUB_DNS_JS = join(DIST, 'netns-fixtures/stub-dns.js')
const ZONE_SWITCH = join(DIST, 'netns-fixtures/zone-switch')
const NAME_RE = /^[a-z][a-z0-9]{0,9}$/
const CTR_RE = /^[a-z][a-z0-9-]{0,30}$/

function pidFile(h: HostState): string {
  return join(h.dir, 'plexusd.pid')
}

/** One JSON line per agent life: how it ended (exit code or signal), and any stop the fixture asked for. */
function exitsFile(h: HostState): string {
  return join(h.dir, 'plexusd.exits')
}

/**
 * The pid file holds "PID START [WRAPPER WSTART]": the agent's pid with its start time
 * (/proc/PID/stat), and the shell that waits for it. A pid counts as ours only while the
 * process with that number started at that time, so a reused pid is never signalled.
 */
function readPids(h: HostState): { agent?: number; wrapper?: number } {
  const f = pidFile(h)
  if (!existsSync(f)) return {}
  const [pid, start, wpid, wstart] = readFileSync(f, 'utf8').trim().split(/\s+/).map(Number)
  const ours = (p?: number, st?: number) =>
    p && Number.isInteger(p) && alive(p) && (st === undefined || procStart(p) === st) ? p : undefined
  return { agent: ours(pid, start), wrapper: wpid ? ours(wpid, wstart ?? -1) : undefined }
}

function agentPid(h: HostState): number | undefined {
  return readPids(h).agent
}

/** Per-host agent config; extended as modules gain settings. */
function agentConfig(c: ClusterState, h: HostState, index: number): Record<string, unknown> {
  const seeds = c.hosts.filter((x) => x.name !== h.name).slice(0, 2)
  const generated: Record<string, unknown> = {
    name: h.name,
    stateDir: join(h.dir, 'state'),
    runDir: join(h.dir, 'run'),
    logLevel: process.env.PLEXUS_LOG_LEVEL ?? 'info',
    api: { socket: h.socket },
    cluster: {
      listen: [`/ip4/${h.ip}/tcp/${CLUSTER_PORT}`],
      bootstrap: seeds.map((s) => `/ip4/${s.ip}/tcp/${CLUSTER_PORT}`),
      keyFile: join(clusterDir(c.name), 'cluster.key'),
    },
    underlayInterface: 'eth0',
    underlayAddress: h.ip,
    network: { seed: { Network: c.cidr, Backend: { Type: c.backend } } },
    // The stub upstream runs in the underlay namespace: forwarding never leaves the test bed.
    dns: { upstreams: [UNDERLAY_GATEWAY] },
    datapath: { firewall: c.firewall },
    // the bundled plugin of this build, as a runtime finds an installed one on its CNI_PATH
    runner: { cniPath: [dirname(CNI_PLUGIN)] },
    labels: { fixture: c.name, index: String(index + 1), ...(h.zone ? { zone: h.zone } : {}) },
  }
  for (const extra of [c.agentConfig ?? {}, h.agentConfig ?? {}]) {
    for (const [k, v] of Object.entries(extra)) {
      const base = generated[k]
      generated[k] = isObject(base) && isObject(v) ? { ...base, ...v } : v
    }
  }
  return generated
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function parseAgentConfig(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {}
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new FixtureError(`--agent-config is not JSON: ${(err as Error).message}`)
  }
  need(isObject(v), '--agent-config must be a JSON object, e.g. \'{"network":{"leaseSettleMs":1000}}\'')
  return v
}

function writeClusterKey(c: ClusterState): void {
  // the same key `plexctl cluster init` writes
  writeFileSync(join(clusterDir(c.name), 'cluster.key'), newClusterKey(), { mode: 0o600 })
}

/** Names the stub upstream answers, so tests can check forwarding out of the zone. */
export const STUB_RECORDS = ['example.test=203.0.113.7', 'www.example.test=203.0.113.8']

/** The agents' upstream resolver, in the underlay namespace: forwarded queries never leave the test bed. */
async function startStubDns(c: ClusterState): Promise<void> {
  need(existsSync(STUB_DNS_JS), `${STUB_DNS_JS} is missing: run 'make build' first`)
  const logFile = join(clusterDir(c.name), 'stub-dns.log')
  const log = openSync(logFile, 'a')
  const records = STUB_RECORDS.flatMap((r) => ['--record', r])
  const args = [
    'netns',
    'exec',
    underlayNs(c.name),
    process.execPath,
    STUB_DNS_JS,
    '--listen',
    `${UNDERLAY_GATEWAY}:53`,
  ]
  spawn('ip', [...args, ...records], { detached: true, stdio: ['ignore', log, log] }).unref()
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (readFileSync(logFile, 'utf8').includes('ready')) return
    await sleep(50)
  }
  throw new FixtureError(`stub DNS did not start: ${readFileSync(logFile, 'utf8')}`)
}

// The agent runs under a shell that waits for it and appends how it ended to the exits
// file: a death is recorded even when nothing else (log, core, kernel) says a word.
// `wait` gives the exit code, or 128 + the signal number.
// The pid goes through a rename: the poll below would otherwise find the file created but still empty.
// Inside `ip netns exec`, the host's cgroup hierarchies are mounted again first ($6, lib/cgroups.ts),
// then the shell execs the agent (same pid).
const WAIT_AGENT = `ip netns exec "$1" sh -c "$6"'
exec "$0" --config "$1"' "$2" "$3" & pid=$!
echo "$pid" > "$4.tmp" && mv "$4.tmp" "$4"
wait "$pid"; s=$?
printf '{"pid":%s,"status":%s,"at":"%s"}\\n' "$pid" "$s" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" >> "$5"`

async function startAgent(c: ClusterState, h: HostState, index: number): Promise<void> {
  need(existsSync(AGENT_JS), `${AGENT_JS} is missing: run 'make build' first`)
  mkdirSync(join(h.dir, 'run'), { recursive: true })
  const cfg = join(h.dir, 'plexusd.json')
  writeFileSync(cfg, `${JSON.stringify(agentConfig(c, h, index), null, 2)}\n`)
  const log = openSync(join(h.dir, 'plexusd.log'), 'a')
  const started = `${pidFile(h)}.started`
  rmSync(started, { force: true })
  // executed, not handed to node: its first line carries the agent's runtime flags
  const wrapper = spawn(
    'sh',
    [
      '-c',
      WAIT_AGENT,
      'plexusd-wait',
      h.ns,
      AGENT_JS,
      cfg,
      started,
      exitsFile(h),
      cgroupMountScript(readFileSync('/proc/self/mountinfo', 'utf8')),
    ],
    {
      detached: true,
      stdio: ['ignore', log, log],
    },
  )
  need(wrapper.pid, `could not start plexusd for ${h.name}`)
  const wstart = procStart(wrapper.pid)
  wrapper.unref()
  const deadline = Date.now() + 5000
  while (!existsSync(started) && Date.now() < deadline) await sleep(10)
  const pid = existsSync(started) ? Number(readFileSync(started, 'utf8').trim()) : 0
  need(pid > 0, `plexusd for ${h.name} did not start`)
  writeFileSync(pidFile(h), `${pid} ${procStart(pid) ?? -1} ${wrapper.pid} ${wstart ?? -1}\n`)
  rmSync(started, { force: true })
}

/** The agent lives recorded for a host: exit code or signal, and whether the fixture asked for the stop. */
function agentExits(
  h: HostState,
): { pid: number; code?: number; signal?: string; at: string; asked?: string }[] {
  if (!existsSync(exitsFile(h))) return []
  const lines = readFileSync(exitsFile(h), 'utf8').trim().split('\n').filter(Boolean)
  const records = lines.map(
    (l) => JSON.parse(l) as { pid: number; status?: number; asked?: string; at: string },
  )
  const asked = new Map(records.filter((r) => r.asked).map((r) => [r.pid, r.asked as string]))
  return records
    .filter((r) => r.status !== undefined)
    .map((r) => {
      const status = r.status as number
      const signal = status > 128 ? signalName(status - 128) : undefined
      return {
        pid: r.pid,
        ...(signal ? { signal } : { code: status }),
        at: r.at,
        ...(asked.has(r.pid) ? { asked: asked.get(r.pid) } : {}),
      }
    })
}

/** one JSON call to a host's agent (plexctl's client) */
function api(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5000,
): Promise<unknown> {
  return createClient(socket).call(method, path, body, { timeoutMs })
}

/**
 * How long `up`, `join` and `start` wait for an agent to serve with a lease. A
 * first lease takes a join, a settle period and a majority's confirmation
 * (src/ipam/README.md): 10-20 s on an idle 2-core machine for a fresh cluster,
 * over 30 s at load 20, more for 9 hosts.
 */
const DEFAULT_WAIT_S = '90'

/** --wait in seconds */
function waitMs(seconds: string): number {
  const s = Number(seconds)
  need(Number.isFinite(s) && s > 0 && s <= 3600, '--wait must be a number of seconds from 1 to 3600')
  return s * 1000
}

/** Waits until the agent answers and, with lease, until it can take containers (CNI STATUS ready). */
async function waitAgent(h: HostState, timeoutMs: number, lease = true): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (!agentPid(h)) break
    try {
      await api(h.socket, 'GET', '/v1/status', undefined, 1000)
      if (lease) await api(h.socket, 'GET', '/v1/cni/status', undefined, 1000)
      return
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(100)
  }
  const log = existsSync(join(h.dir, 'plexusd.log')) ? readFileSync(join(h.dir, 'plexusd.log'), 'utf8') : ''
  throw new FixtureError(
    `plexusd on ${h.name} did not come up (${agentPid(h) ? last : 'process exited'}); log tail:\n${log.split('\n').slice(-15).join('\n')}`,
  )
}

async function up(opts: {
  name: string
  hosts: string
  backend: 'vxlan' | 'host-gw' | 'wireguard'
  cidr: string
  firewall: string
  waitLease: boolean
  wait: string
  agentConfig?: string
  zones?: string
  zoneRtt: string[]
}) {
  need(NAME_RE.test(opts.name), `--name must match ${NAME_RE} (it prefixes namespace names)`)
  const k = Number(opts.hosts)
  need(Number.isInteger(k) && k >= 1 && k <= 200, '--hosts must be a whole number from 1 to 200')
  need(opts.zones || opts.zoneRtt.length === 0, '--zone-rtt needs --zones')
  let zones: ReturnType<typeof parseZones> | undefined
  try {
    zones = opts.zones ? parseZones(opts.zones, opts.zoneRtt, k) : undefined
  } catch (err) {
    throw new FixtureError((err as Error).message)
  }
  need(!loadCluster(opts.name), `cluster "${opts.name}" is already up (cluster down --name ${opts.name})`)
  const clash = listNetns().filter((n) => n.startsWith(`${opts.name}-`))
  need(clash.length === 0, `namespaces named ${opts.name}-* already exist: ${clash.join(', ')}`)

  const c: ClusterState = {
    name: opts.name,
    backend: opts.backend,
    cidr: opts.cidr,
    firewall: opts.firewall,
    agentConfig: parseAgentConfig(opts.agentConfig),
    createdAt: new Date().toISOString(),
    hosts: Array.from({ length: k }, (_, i) => hostState(opts.name, i, zones?.hostZones[i])),
    ...(zones ? { zones: zones.spec } : {}),
  }
  // Record intent before touching the kernel so `down` can undo a half-made cluster.
  saveCluster(c)
  writeClusterKey(c)
  try {
    const u = underlayNs(c.name)
    sh('ip', ['netns', 'add', u])
    ipNs(u, 'link', 'set', 'lo', 'up')
    ipNs(u, 'link', 'add', 'br0', 'type', 'bridge')
    ipNs(u, 'addr', 'add', `${UNDERLAY_GATEWAY}/24`, 'dev', 'br0')
    ipNs(u, 'link', 'set', 'br0', 'up')
    await makeZones(c, ZONE_SWITCH)
    await startStubDns(c)
    for (const h of c.hosts) makeHost(c, h)
    for (const [i, h] of c.hosts.entries()) await startAgent(c, h, i)
    await Promise.all(c.hosts.map((h) => waitAgent(h, waitMs(opts.wait), opts.waitLease)))
  } catch (err) {
    process.stderr.write(`cluster up failed, tearing down: ${(err as Error).message}\n`)
    await down({ name: c.name })
    throw err
  }
  process.stdout.write(
    `cluster ${c.name}: ${k} hosts up (${c.hosts.map((h) => `${h.name}=${h.ip}`).join(' ')})\n`,
  )
}

function hostState(clusterName: string, i: number, zone?: string): HostState {
  const name = `h${i + 1}`
  const dir = join(clusterDir(clusterName), name)
  return {
    name,
    ns: hostNs(clusterName, name),
    ip: `${UNDERLAY_PREFIX}.${i + 11}`,
    dir,
    socket: join(dir, 'run/plexusd.sock'),
    ...(zone ? { zone } : {}),
  }
}

/** The host's namespace, with its underlay veth on the cluster's bridge. */
function makeHost(c: ClusterState, h: HostState): void {
  const u = underlayNs(c.name)
  mkdirSync(h.dir, { recursive: true })
  sh('ip', ['netns', 'add', h.ns])
  ipNs(h.ns, 'link', 'set', 'lo', 'up')
  ipNs(u, 'link', 'add', `u-${h.name}`, 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns)
  ipNs(u, 'link', 'set', `u-${h.name}`, 'master', zoneBridge(c, h.zone), 'up')
  ipNs(h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0')
  ipNs(h.ns, 'link', 'set', 'eth0', 'up')
  ipNs(h.ns, 'route', 'add', 'default', 'via', UNDERLAY_GATEWAY)
}

/** Adds one host to a running cluster: a new namespace and a new agent (fresh identity) joining the others. */
async function joinHost(opts: {
  name: string
  waitLease: boolean
  wait: string
  agentConfig?: string
  zone?: string
}) {
  const c = requireCluster(opts.name)
  need(c.hosts.length < 200, 'a cluster holds at most 200 hosts')
  need(
    !opts.zone || c.zones?.names.includes(opts.zone),
    `--zone: cluster "${c.name}" has no zone "${opts.zone}"`,
  )
  const h = hostState(c.name, c.hosts.length, opts.zone ?? c.zones?.names[0])
  if (opts.agentConfig) h.agentConfig = parseAgentConfig(opts.agentConfig)
  c.hosts.push(h)
  saveCluster(c) // before touching the kernel, so `down` finds the host whatever happens next
  makeHost(c, h)
  await startAgent(c, h, c.hosts.length - 1)
  await waitAgent(h, waitMs(opts.wait), opts.waitLease)
  process.stdout.write(`${h.name} joined cluster ${c.name} at ${h.ip}\n`)
}

/** Removes every namespace, process and file of the cluster; works from any half-state. */
async function down(opts: { name: string }) {
  need(NAME_RE.test(opts.name), `--name must match ${NAME_RE}`)
  const ctrNames = new Set(listCtrs(opts.name).map((x) => ctrNs(opts.name, x.name)))
  const ours = listNetns().filter(
    (n) => n === underlayNs(opts.name) || new RegExp(`^${opts.name}-h\\d+$`).test(n) || ctrNames.has(n),
  )
  const c = loadCluster(opts.name)
  const pids = new Set<number>()
  for (const ns of ours) for (const p of netnsPids(ns)) pids.add(p)
  const wrappers: number[] = []
  for (const h of c?.hosts ?? []) {
    const { agent, wrapper } = readPids(h)
    if (agent) pids.add(agent)
    if (wrapper) wrappers.push(wrapper)
  }
  await killAll([...pids])
  // tasks run in namespaces of their own, detached from their agent: the runner's records name them
  for (const h of c?.hosts ?? []) await cleanupRunner(join(h.dir, 'state'))
  // each waiting shell records its agent's end and exits; give it the moment that takes
  const deadline = Date.now() + 2000
  while (wrappers.some(alive) && Date.now() < deadline) await sleep(20)
  await killAll(wrappers.filter(alive), 500)
  for (const ns of ours) {
    shQuiet('ip', ['netns', 'delete', ns])
    rmSync(join('/etc/netns', ns), { recursive: true, force: true })
  }
  for (const ns of ctrNames) rmSync(join('/etc/netns', ns), { recursive: true, force: true })
  rmSync(clusterDir(opts.name), { recursive: true, force: true })
  const left = listNetns().filter((n) => ours.includes(n))
  need(left.length === 0, `namespaces still present after down: ${left.join(', ')}`)
  process.stdout.write(`cluster ${opts.name}: down\n`)
}

function execIn(opts: ExecWhere & { name: string }, cmd: string[]): number {
  const { ns, env } = execTarget(opts.name, opts)
  need(cmd.length > 0, 'no command given (cluster exec ... -- CMD...)')
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit', env })
  if (r.error) throw r.error
  return r.status ?? 1
}

interface RunOpts {
  name: string
  host: string
  ctr: string
  service?: string
  publish: string[]
  expose: string[]
  link: string[]
  label: string[]
  ip?: string
}

function parsePublish(spec: string): {
  hostPort: number
  containerPort: number
  protocol: string
  hostIP?: string
} {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec)
  need(m, `--publish wants [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp], got "${spec}"`)
  return {
    hostPort: Number(m[2]),
    containerPort: Number(m[3]),
    protocol: m[4] ?? 'tcp',
    ...(m[1] ? { hostIP: m[1] } : {}),
  }
}

/** Invokes the CNI plugin as a runtime does: CNI_* env, network config on stdin, run in the host namespace. */
function cni(h: HostState, ctr: CtrState, command: 'ADD' | 'DEL' | 'CHECK', args: string) {
  need(existsSync(CNI_PLUGIN), `${CNI_PLUGIN} is missing: run 'make build' first`)
  const netns = `/run/netns/${ctr.ns}`
  const r = spawnSync('ip', ['netns', 'exec', h.ns, CNI_PLUGIN], {
    input: ctr.netconf,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: ctr.containerId,
      CNI_NETNS: command === 'DEL' && !existsSync(netns) ? '' : netns,
      CNI_IFNAME: ctr.ifname,
      CNI_PATH: `${dirname(CNI_PLUGIN)}:/usr/lib/cni:/opt/cni/bin`,
      CNI_ARGS: args,
    },
  })
  const out = (r.stdout ?? '').trim()
  if (r.status !== 0) {
    throw new FixtureError(`CNI ${command} for ${ctr.name} failed (exit ${r.status}): ${out || r.stderr}`)
  }
  return out ? (JSON.parse(out) as Record<string, unknown>) : undefined
}

function cniArgs(o: { ctr: string; service?: string; expose?: string[]; label?: string[] }): string {
  const kv = [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAME', o.ctr],
    ['PLEXUS_NAME', o.ctr],
  ]
  if (o.service) kv.push(['PLEXUS_SERVICE', o.service])
  if (o.expose?.length) kv.push(['PLEXUS_EXPOSE', o.expose.join(',')])
  for (const l of o.label ?? []) kv.push(['PLEXUS_LABEL', l])
  return kv.map(([k, v]) => `${k}=${v}`).join(';')
}

function writeResolvConf(ns: string, result: Record<string, unknown> | undefined): void {
  const dir = join('/etc/netns', ns)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'resolv.conf'), resolvConfText(result) ?? '\n')
}

/** The container's own hosts file (ip netns exec mounts it); the agent keeps the link entries in it current. */
function writeHosts(ctr: CtrState): string {
  const ips = ((ctr.result as { ips?: { address: string }[] } | undefined)?.ips ?? []).map(
    (i) => i.address.split('/')[0],
  )
  const file = join('/etc/netns', ctr.ns, 'hosts')
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(
    file,
    ['127.0.0.1\tlocalhost', '::1\tlocalhost', ...ips.map((ip) => `${ip}\t${ctr.name}`), ''].join('\n'),
  )
  return file
}

/** Registers each --link with the host agent; returns the Docker-style env the links give. */
async function addLinks(
  h: HostState,
  ctr: CtrState,
  links: string[],
  hostsFile: string,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const spec of links) {
    const [target = '', alias = target] = spec.split(':')
    const path = `/v1/links/${encodeURIComponent(ctr.name)}/${encodeURIComponent(alias)}`
    const res = (await api(h.socket, 'PUT', path, { target, hostsFile })) as { env: Record<string, string> }
    Object.assign(env, res.env)
  }
  return env
}

async function run(opts: RunOpts, cmd: string[]) {
  const c = requireCluster(opts.name)
  const h = hostOf(c, opts.host)
  need(CTR_RE.test(opts.ctr), `--ctr must match ${CTR_RE}`)
  need(
    /^h\d+$|^underlay$/.test(opts.ctr) === false,
    `--ctr "${opts.ctr}" would clash with a host namespace name`,
  )
  need(!loadCtr(c.name, opts.ctr), `container "${opts.ctr}" already exists in cluster ${c.name}`)
  need(cmd.length > 0, 'no command given (cluster run ... -- CMD...)')
  const runtimeConfig: Record<string, unknown> = {}
  if (opts.publish.length) runtimeConfig.portMappings = opts.publish.map(parsePublish)
  if (opts.ip) runtimeConfig.ips = [opts.ip]
  const ctr: CtrState = {
    name: opts.ctr,
    host: h.name,
    ns: ctrNs(c.name, opts.ctr),
    containerId: `${c.name}-${opts.ctr}-${randomBytes(6).toString('hex')}`,
    ifname: 'eth0',
    netconf: JSON.stringify({
      cniVersion: '1.1.0',
      name: 'plexus',
      type: 'plexus',
      socket: h.socket,
      ...(Object.keys(runtimeConfig).length ? { runtimeConfig } : {}),
    }),
  }
  const args = cniArgs(opts)
  saveCtr(c.name, ctr)
  try {
    sh('ip', ['netns', 'add', ctr.ns])
    ipNs(ctr.ns, 'link', 'set', 'lo', 'up')
    ctr.result = cni(h, ctr, 'ADD', args)
    writeResolvConf(ctr.ns, ctr.result as Record<string, unknown>)
    const hostsFile = writeHosts(ctr)
    const linkEnv = await addLinks(h, ctr, opts.link, hostsFile)
    const log = openSync(join(ctrDir(c.name), `${ctr.name}.log`), 'a')
    const child = spawn('ip', ['netns', 'exec', ctr.ns, ...cmd], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...envFor(c), ...linkEnv, PLEXUS_CONTAINER: ctr.name },
    })
    ctr.pid = child.pid
    child.unref()
    saveCtr(c.name, ctr)
  } catch (err) {
    await rm({ name: c.name, ctr: ctr.name }, true)
    throw err
  }
  const ips = ((ctr.result as { ips?: { address: string }[] } | undefined)?.ips ?? []).map((i) => i.address)
  process.stdout.write(`${ctr.name} on ${h.name}: ${ips.join(' ') || 'no address'}\n`)
}

async function rm(opts: { name: string; ctr: string }, quiet = false) {
  const c = requireCluster(opts.name)
  const ctr = loadCtr(c.name, opts.ctr)
  need(ctr, `no container "${opts.ctr}" in cluster ${c.name}`)
  await killAll(netnsPids(ctr.ns), 2000)
  const h = c.hosts.find((x) => x.name === ctr.host)
  let delError: Error | undefined
  if (h && agentPid(h)) {
    try {
      await api(h.socket, 'DELETE', `/v1/links/${encodeURIComponent(ctr.name)}`)
      cni(h, ctr, 'DEL', cniArgs({ ctr: ctr.name }))
    } catch (err) {
      delError = err as Error
    }
  }
  shQuiet('ip', ['netns', 'delete', ctr.ns])
  rmSync(join('/etc/netns', ctr.ns), { recursive: true, force: true })
  removeCtr(c.name, ctr.name)
  if (delError) throw delError
  if (!quiet) process.stdout.write(`${ctr.name}: removed\n`)
}

async function stopHost(opts: { name: string; host: string; signal: string }) {
  const c = requireCluster(opts.name)
  const h = hostOf(c, opts.host)
  const pid = agentPid(h)
  need(pid, `plexusd on ${h.name} is not running`)
  appendFileSync(
    exitsFile(h),
    `${JSON.stringify({ pid, asked: opts.signal, at: new Date().toISOString() })}\n`,
  )
  if (opts.signal === 'KILL') {
    process.kill(pid, 'SIGKILL')
    while (alive(pid)) await sleep(10)
  } else await killAll([pid], 10_000)
  process.stdout.write(`${h.name}: plexusd stopped (${opts.signal})\n`)
}

async function startHost(opts: { name: string; host: string }) {
  const c = requireCluster(opts.name)
  const h = hostOf(c, opts.host)
  need(!agentPid(h), `plexusd on ${h.name} is already running`)
  await startAgent(c, h, c.hosts.indexOf(h))
  await waitAgent(h, waitMs(DEFAULT_WAIT_S))
  process.stdout.write(`${h.name}: plexusd started\n`)
}

function ls(opts: { name?: string; output: string }) {
  const names = opts.name ? [opts.name] : listClusters()
  const clusters = names
    .map((n) => loadCluster(n))
    .filter((c): c is ClusterState => c !== undefined)
    .map((c) => ({
      name: c.name,
      backend: c.backend,
      cidr: c.cidr,
      createdAt: c.createdAt,
      ...(c.zones ? { zones: c.zones } : {}),
      hosts: c.hosts.map((h) => ({
        name: h.name,
        ...(h.zone ? { zone: h.zone } : {}),
        ns: h.ns,
        address: h.ip,
        socket: h.socket,
        agentPid: agentPid(h) ?? null,
        exits: agentExits(h),
      })),
      containers: listCtrs(c.name).map((x) => ({
        name: x.name,
        host: x.host,
        ns: x.ns,
        containerId: x.containerId,
        addresses: ((x.result as { ips?: { address: string }[] } | undefined)?.ips ?? []).map(
          (i) => i.address,
        ),
        pid: x.pid && alive(x.pid) ? x.pid : null,
      })),
    }))
  if (opts.name) need(clusters.length === 1, `no cluster "${opts.name}"`)
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify(opts.name ? clusters[0] : clusters, null, 2)}\n`)
    return
  }
  for (const c of clusters) {
    process.stdout.write(`cluster ${c.name} (${c.backend}, ${c.cidr})\n`)
    for (const h of c.hosts)
      process.stdout.write(
        `  host ${h.name.padEnd(5)} ${h.address.padEnd(14)} ${h.zone ? `zone ${h.zone} ` : ''}plexusd ${h.agentPid ?? 'down'}\n`,
      )
    for (const x of c.containers)
      process.stdout.write(`  ctr  ${x.name.padEnd(12)} on ${x.host.padEnd(5)} ${x.addresses.join(' ')}\n`)
  }
}

const collect = (v: string, acc: string[]) => [...acc, v]
const program = new Command('cluster').description('Plexus multi-host test bed in network namespaces')
program
  .command('up')
  .requiredOption('--name <N>', 'cluster name (prefixes every namespace)')
  .requiredOption('--hosts <K>', 'number of hosts')
  .addOption(
    new Option('--backend <type>', 'overlay backend')
      .choices(['vxlan', 'host-gw', 'wireguard'])
      .default('vxlan'),
  )
  .option('--cidr <C>', 'cluster network', '10.244.0.0/16')
  .option('--no-wait-lease', 'return once agents answer, before they hold a subnet lease')
  .option('--wait <s>', 'seconds to wait for the agents', DEFAULT_WAIT_S)
  .option('--agent-config <json>', 'JSON merged over every agent config (plexusd checks it)')
  .option('--zones <NAME:K,...>', 'hosts in zones, in order (e.g. a:3,b:3; the sum is --hosts)')
  .option(
    '--zone-rtt <A-B=MSms>',
    'round trip between two zones (repeatable; a pair not given: none)',
    collect,
    [],
  )
  .addOption(
    new Option('--firewall <b>', 'firewall backend')
      .choices(['auto', 'iptables', 'nftables'])
      .default('auto'),
  )
  .action(up)
program
  .command('join')
  .description('add one host (a new agent) to a running cluster')
  .requiredOption('--name <N>')
  .option('--no-wait-lease', 'return once the agent answers, before it holds a subnet lease')
  .option('--wait <s>', 'seconds to wait for the agent', DEFAULT_WAIT_S)
  .option('--agent-config <json>', "JSON merged over this host's agent config (over the cluster's)")
  .option('--zone <Z>', "the host's zone (default: the first)")
  .action(joinHost)
program.command('down').requiredOption('--name <N>').action(down)
program
  .command('exec')
  .requiredOption('--name <N>')
  .option('--host <hI>')
  .option('--ctr <C>')
  .option('--underlay', 'run in the underlay namespace (to cut or slow links)')
  .argument('<cmd...>')
  .action((cmd: string[], opts) => {
    process.exitCode = execIn(opts, cmd)
  })
program
  .command('run')
  .requiredOption('--name <N>')
  .requiredOption('--host <hI>')
  .requiredOption('--ctr <C>')
  .option('--service <S>', 'service the container joins')
  .option('--publish <[IP:]HOSTPORT:CTRPORT[/udp]>', 'publish a port (repeatable)', collect, [])
  .option('--expose <PORT[/udp]>', 'port the container serves (repeatable)', collect, [])
  .option('--link <SVC[:ALIAS]>', 'link to a service (repeatable)', collect, [])
  .option('--label <k=v>', 'endpoint label (repeatable)', collect, [])
  .option('--ip <addr>', 'static address')
  .argument('<cmd...>')
  .action((cmd: string[], opts) => run(opts, cmd))
program
  .command('rm')
  .requiredOption('--name <N>')
  .requiredOption('--ctr <C>')
  .action((o) => rm(o))
program
  .command('stop')
  .description('stop one host agent (SIGTERM, or SIGKILL with --signal KILL)')
  .requiredOption('--name <N>')
  .requiredOption('--host <hI>')
  .addOption(new Option('--signal <s>').choices(['TERM', 'KILL']).default('TERM'))
  .action(stopHost)
program
  .command('start')
  .description('start a stopped host agent')
  .requiredOption('--name <N>')
  .requiredOption('--host <hI>')
  .action(startHost)
program
  .command('ls')
  .option('--name <N>')
  .addOption(new Option('-o, --output <f>').choices(['table', 'json']).default('table'))
  .action(ls)

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`cluster: ${err.message}\n`)
  process.exitCode = err instanceof FixtureError ? 2 : 1
})
