// bench/dns's second half (issue 20 item 4): the DNS of a whole agent, not the
// module alone. A 3-host fixture cluster (gossip, the reconcilers' timers, health
// checks all running); 1,000 containers attached as a runtime attaches them, by
// the CNI plugin's ADD on fresh namespaces, run inside each host's namespace and
// spread over the three hosts, so two thirds of the names reach h1 by gossip;
// three services with http, tcp and exec checks every 2 s. dnsperf runs in a
// container's namespace on h1 and asks h1's agent where a container asks it: the
// bridge gateway address, port 53. dnsmasq serves the same names and addresses
// (a hosts file) on the same gateway address, another port, in h1's namespace,
// so both are reached over the same veth and bridge; same dnsperf settings,
// interleaved A B A B (lib/dnsperf.ts).
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { loadCluster } from '../../netns-fixtures/lib/state.js'
import { createClient } from '../../src/cli/client.js'
import { type HotSpot, profileWhile } from './agent-profile.js'
import {
  answers,
  interleaved,
  type Load,
  maxQps,
  type Samples,
  startDnsmasq,
  type Target,
} from './dnsperf.js'
import { runInnerAsync } from './inner.js'
import { cpuSeconds, rssMb } from './proc.js'
import { median, progress, quantile, REPO } from './report.js'

const CLUSTER = join(REPO, 'netns-fixtures/cluster')
const PLUGIN = join(REPO, 'dist/cni/bin/plexus')
const HOSTS = 3
const DNSMASQ_PORT = 5302
/** ADDs in flight per host */
const ADD_CONCURRENCY = 2
const CHECK_INTERVAL_MS = 2000
/** 6 members each, c1..c18, two on each host; web and api members run a busybox httpd on :80 */
const SERVICES = [
  { name: 'web', check: { name: 'http', type: 'http', port: 80, path: '/' } },
  { name: 'api', check: { name: 'tcp', type: 'tcp', port: 80 } },
  { name: 'db', check: { name: 'exec', type: 'exec', command: ['true'] } },
] as const
const MEMBERS_PER_SERVICE = 6
/** the agents' host subnets: /22, room for the 334 containers of a host (a /24 holds 253) */
const SUBNET_LEN = 22

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A settled agent uses under this share of a core (gossip, timers, checks): the
 * 1,000 ADDs leave reconcile and zone work behind for a while on a loaded machine.
 */
const SETTLED_CPU_PCT = 25
const SETTLE_WINDOW_MS = 5000
const SETTLE_MAX_MS = 180_000

/** the service container i joins, if any */
function serviceOf(i: number): (typeof SERVICES)[number] | undefined {
  return i >= 1 && i <= SERVICES.length * MEMBERS_PER_SERVICE
    ? SERVICES[Math.floor((i - 1) / MEMBERS_PER_SERVICE)]
    : undefined
}

/** what an inner half does in a host's namespace: its ADDs, or profiling its agent under dnsperf */
type InnerJob = AddsJob | ProfileJob
interface AddsJob {
  kind: 'adds'
  socket: string
  host: string
  adds: Add[]
}
interface ProfileJob {
  kind: 'profile'
  pid: number
  load: Load
  target: Target
  out: string
}

/** bench/dns --inner <job file> */
export async function innerJob(file: string): Promise<void> {
  const job = JSON.parse(readFileSync(file, 'utf8')) as InnerJob
  if (job.kind === 'adds') return cniAdds(job)
  const { result, top } = await profileWhile(job.pid, job.out, () => maxQps(job.load, job.target))
  process.stdout.write(`${JSON.stringify({ qps: result, top })}\n`)
}

/** one CNI ADD as the inner half runs it in a host's namespace */
interface Add {
  i: number
  id: string
  netns: string
  args: string
}

export interface Attached {
  i: number
  ip: string
  gateway: string
  /** ADDs answered "try again later" (CNI code 11) before this one took */
  retries: number
  /** the plugin's time, start to exit, of the ADD that took */
  ms: number
}

/** CNI's "try again later": a runtime retries the ADD (the agent's datapath had not caught up) */
const TRY_AGAIN = 11
const MAX_RETRIES = 10

/** one plugin run: its exit code and stdout */
function plugin(env: Record<string, string>, conf: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PLUGIN, [], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let out = ''
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    p.on('error', reject)
    p.on('close', (code) => resolve({ code: code ?? -1, out }))
    p.stdin.end(conf)
  })
}

/**
 * The inner half, in a fixture host's namespace: the plugin spawned directly as a
 * runtime spawns it (no `ip netns exec` around it), ADD_CONCURRENCY at a time,
 * an ADD answered code 11 tried again after a second. Prints the addresses as one JSON line.
 */
async function cniAdds({ socket, host, adds }: AddsJob): Promise<void> {
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'plexus', type: 'plexus', socket })
  const out: Attached[] = []
  const add = async (a: Add): Promise<void> => {
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: a.id,
      CNI_NETNS: a.netns,
      CNI_IFNAME: 'eth0',
      CNI_PATH: join(REPO, 'dist/cni/bin'),
      CNI_ARGS: a.args,
    }
    for (let retries = 0; ; retries++) {
      const t0 = performance.now()
      const r = await plugin(env, conf)
      const ms = performance.now() - t0
      if (r.code === 0) {
        const ip = (JSON.parse(r.out) as { ips: { address: string; gateway: string }[] }).ips[0]
        if (!ip) throw new Error(`CNI ADD of c${a.i}: no address in ${r.out}`)
        out.push({ i: a.i, ip: ip.address.split('/')[0] as string, gateway: ip.gateway, retries, ms })
        if (out.length % 100 === 0) progress(`agent: ${host}: ${out.length}/${adds.length} attached`)
        return
      }
      const code = (JSON.parse(r.out || '{}') as { code?: number }).code
      if (code !== TRY_AGAIN || retries >= MAX_RETRIES)
        throw new Error(`CNI ADD of c${a.i} exited ${r.code}: ${r.out}`)
      progress(`agent: ${host}: ADD of c${a.i} answered code 11 after ${Math.round(ms)} ms, again in 1 s`)
      await sleep(1000)
    }
  }
  const queue = [...adds]
  await Promise.all(
    Array.from({ length: ADD_CONCURRENCY }, async () => {
      for (let a = queue.shift(); a; a = queue.shift()) await add(a)
    }),
  )
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

function cluster(...args: string[]): string {
  return execFileSync(CLUSTER, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

async function until(what: string, timeoutMs: number, fn: () => Promise<string | true>): Promise<void> {
  const end = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    const r = await fn()
    if (r === true) return
    if (r !== last) progress(`waiting: ${what}: ${r}`)
    last = r
    if (Date.now() > end) throw new Error(`timed out: ${what} (${last})`)
    await sleep(500)
  }
}

export interface AgentRun {
  agent: Samples
  dnsmasq: Samples
  zoneNames: number
  rssMb: number
  /** CPU seconds of h1's agent over the measurement, and how long it took */
  cpuS: number
  wallS: number
  /** with profileDir: h1's agent profiled under max load */
  profile?: { file: string; qps: number; top: HotSpot[] }
  /** the 1,000 ADDs: wall time for all, each ADD's plugin time, ADDs answered code 11 */
  adds: { s: number; ms: number[]; retries: number }
  /** h1's agent's CPU share (% of a core) in the last 5 s before the load */
  idleCpuPct: number
  /** health check runs on h1 during the measurement */
  checkRuns: number
  method: string
}

/** how many health check runs h1's agent counted so far (its /metrics) */
async function checkRuns(socket: string): Promise<number> {
  const text = await createClient(socket).call<string>('GET', '/metrics')
  return [...text.matchAll(/^plexus_health_check_runs_total\{[^}]*\} (\d+)/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  )
}

/**
 * Runs the whole agent measurement. `atTeardown` takes synchronous undo steps
 * (run in reverse, also on SIGINT); `children` the pids to kill then.
 */
export async function agentDns(o: {
  names: number
  runs: number
  seconds: number
  dir: string
  /** profile h1's agent under dnsperf after the measurement, the .cpuprofile kept here */
  profileDir?: string
  scriptUrl: string
  atTeardown: (fn: () => void) => void
  children: number[]
}): Promise<AgentRun> {
  // dnsperf, dig and the fixture run synchronously here: a kept-alive API connection would sit
  // unread meanwhile, be closed by the agent's idle timeout, and the next call write into it (EPIPE)
  http.globalAgent = new http.Agent({ keepAlive: false })
  const name = `dns${randomBytes(3).toString('hex')}`
  o.atTeardown(() => {
    try {
      cluster('down', '--name', name)
    } catch (err) {
      progress(`teardown: cluster down ${name}: ${(err as Error).message}`)
    }
  })
  progress(`agent: fixture ${name}: ${HOSTS} hosts, /${SUBNET_LEN} host subnets`)
  const seed = { Network: '10.244.0.0/16', SubnetLen: SUBNET_LEN, Backend: { Type: 'vxlan' } }
  cluster(
    'up',
    '--name',
    name,
    '--hosts',
    String(HOSTS),
    '--wait',
    '180',
    '--agent-config',
    JSON.stringify({ network: { seed } }),
  )
  const c = loadCluster(name)
  if (!c) throw new Error(`fixture ${name}: no state`)
  const h1 = c.hosts[0]
  if (!h1) throw new Error(`fixture ${name}: no h1`)
  const api = createClient(h1.socket)
  for (const s of SERVICES)
    await api.call('PUT', `/v1/services/${s.name}`, {
      ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
      checks: [{ ...s.check, intervalMs: CHECK_INTERVAL_MS, timeoutMs: 1000 }],
    })

  // the container namespaces, made out here (see bench/cni.ts), removed even on failure
  const nsOf = (i: number) => `${name}-c${i}`
  const all = Array.from({ length: o.names }, (_, i) => i)
  o.atTeardown(() => {
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: all.map((i) => `netns del ${nsOf(i)}\n`).join(''),
      stdio: ['pipe', 'ignore', 'ignore'],
    })
  })
  execFileSync('ip', ['-batch', '-'], { input: all.map((i) => `netns add ${nsOf(i)}\n`).join('') })
  // the three hosts' ADDs at once, each host's from inside its namespace
  const t0 = performance.now()
  const perHost = await Promise.allSettled(
    c.hosts.map(async (h, k) => {
      const adds: Add[] = all
        .filter((i) => i % HOSTS === k)
        .map((i) => {
          const s = serviceOf(i)
          const kv = ['IgnoreUnknown=1', `K8S_POD_NAME=c${i}`, `PLEXUS_NAME=c${i}`]
          if (s) kv.push(`PLEXUS_SERVICE=${s.name}`, 'PLEXUS_EXPOSE=80/tcp')
          return { i, id: `${name}-c${i}`, netns: `/run/netns/${nsOf(i)}`, args: kv.join(';') }
        })
      const file = join(o.dir, `adds-${h.name}.json`)
      writeFileSync(file, JSON.stringify({ kind: 'adds', socket: h.socket, host: h.name, adds }))
      return runInnerAsync<Attached[]>(name, h.name, o.scriptUrl, [file])
    }),
  )
  // every host's half has ended before a failure tears their namespaces down
  const failed = perHost.find((r) => r.status === 'rejected')
  if (failed) throw failed.reason
  const attached = perHost.flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
  const addMs = attached.map((a) => a.ms)
  const retries = attached.reduce((n, a) => n + a.retries, 0)
  const addS = (performance.now() - t0) / 1000
  progress(
    `agent: ${attached.length} CNI ADDs in ${Math.round(addS)} s (${ADD_CONCURRENCY} at a time per host): ` +
      `median ${Math.round(median(addMs))} ms, p95 ${Math.round(quantile(addMs, 0.95))} ms, ${retries} tried again (code 11)`,
  )
  const byIndex = new Map(attached.map((a) => [a.i, a]))
  const gateway = byIndex.get(0)?.gateway
  if (!gateway) throw new Error('container c0 (on h1) has no gateway')

  // the web and api members serve http on :80 (busybox httpd, a few hundred kB each)
  const www = join(o.dir, 'www')
  mkdirSync(www, { recursive: true })
  writeFileSync(join(www, 'index.html'), 'ok\n')
  for (const i of all.filter((i) => serviceOf(i) && serviceOf(i)?.check.type !== 'exec')) {
    const p = spawn('ip', ['netns', 'exec', nsOf(i), 'busybox', 'httpd', '-f', '-p', '80', '-h', www], {
      stdio: 'ignore',
    })
    o.children.push(p.pid as number)
  }

  const client = nsOf(0)
  execFileSync('ip', ['-n', client, 'link', 'set', 'lo', 'up'])
  const agent: Target = { side: 'agent', address: gateway, port: 53 }
  const dnsmasq: Target = { side: 'dnsmasq', address: gateway, port: DNSMASQ_PORT }
  const names = all.map((i) => `c${i}.ctr.plexus.internal`)
  const expected = new Map(names.map((n, i) => [n, byIndex.get(i)?.ip ?? '']))
  const mismatches = (got: Map<string, string>) => names.filter((n) => got.get(n) !== expected.get(n))

  await until('every service member healthy on h1', 120_000, async () => {
    const list = await api.call<{ name: string; healthy: number; total: number }[]>('GET', '/v1/services')
    const ok = SERVICES.every((s) => list.find((x) => x.name === s.name)?.healthy === MEMBERS_PER_SERVICE)
    return ok || list.map((x) => `${x.name} ${x.healthy}/${x.total}`).join(', ')
  })
  await until(`h1's DNS answers all ${o.names} names with their addresses`, 120_000, async () => {
    const wrong = mismatches(answers(client, agent, names))
    return wrong.length === 0 || `${wrong.length} not yet (${wrong.slice(0, 3).join(' ')})`
  })
  const status = await api.call<{ zone: { names: number } }>('GET', '/v1/dns')
  progress(`agent: h1's zone holds ${status.zone.names} names`)

  const hosts = join(o.dir, 'agent-hosts')
  writeFileSync(hosts, names.map((n) => `${expected.get(n)} ${n}\n`).join(''))
  await startDnsmasq(h1.ns, dnsmasq, hosts, names[7] as string, o.children)
  const wrong = mismatches(answers(client, dnsmasq, names))
  if (wrong.length) throw new Error(`dnsmasq answers ${wrong.length} names otherwise: ${wrong.slice(0, 3)}`)

  const namesFile = join(o.dir, 'agent-names.txt')
  writeFileSync(namesFile, names.map((n) => `${n} A\n`).join(''))
  const agentPid = (
    JSON.parse(cluster('ls', '--name', name, '-o', 'json')) as { hosts: { agentPid: number | null }[] }
  ).hosts[0]?.agentPid
  if (!agentPid) throw new Error("h1's agent is not running")
  // the measurement starts once the ADDs' aftermath is over: h1's agent at its background load
  let idlePct = Number.POSITIVE_INFINITY
  const settleEnd = Date.now() + SETTLE_MAX_MS
  while (idlePct >= SETTLED_CPU_PCT && Date.now() < settleEnd) {
    const c0 = cpuSeconds([agentPid])
    await sleep(SETTLE_WINDOW_MS)
    idlePct = (100 * (cpuSeconds([agentPid]) - c0)) / (SETTLE_WINDOW_MS / 1000)
    progress(`agent: h1's agent at ${idlePct.toFixed(1)} % of a core before the load`)
  }
  progress(
    `agent: h1 agent pid ${agentPid}; dnsperf in ${client} (c0 on h1) → ${gateway}:53 (agent) and :${DNSMASQ_PORT} (dnsmasq)`,
  )
  const runs0 = await checkRuns(h1.socket)
  const cpu0 = cpuSeconds([agentPid])
  const w0 = performance.now()
  const s = interleaved({ ns: client, namesFile, seconds: o.seconds }, [agent, dnsmasq], o.runs, 'agent: ')
  const wallS = (performance.now() - w0) / 1000
  const cpuS = cpuSeconds([agentPid]) - cpu0
  const runs = (await checkRuns(h1.socket)) - runs0
  // both servers must still give every name its address after the load
  for (const t of [agent, dnsmasq]) {
    const bad = mismatches(answers(client, t, names))
    if (bad.length) throw new Error(`${t.side} lost ${bad.length} names under load: ${bad.slice(0, 3)}`)
  }
  let profile: AgentRun['profile']
  if (o.profileDir) {
    // after the figures: the inspector's sampling slows the agent
    const out = join(o.profileDir, `dns-agent-${name}.cpuprofile`)
    const job = join(o.dir, 'profile.json')
    const load: Load = { ns: client, namesFile, seconds: o.seconds }
    writeFileSync(job, JSON.stringify({ kind: 'profile', pid: agentPid, load, target: agent, out }))
    try {
      const p = await runInnerAsync<{ qps: number; top: HotSpot[] }>(
        name,
        h1.name,
        o.scriptUrl,
        [job],
        ['--experimental-websocket', '--no-warnings'],
      )
      progress(
        `agent: profile of h1's agent under max load (${Math.round(p.qps)} qps while profiled): ${out}`,
      )
      for (const h of p.top) progress(`  ${h.pct.toFixed(1).padStart(5)} %  ${h.fn}`)
      profile = { file: out, ...p }
    } catch (err) {
      // a diagnosis, not a figure: the run's figures stand without it
      progress(`agent: profiling failed: ${(err as Error).message}`)
    }
  }
  return {
    profile,
    agent: s.get('agent') as Samples,
    dnsmasq: s.get('dnsmasq') as Samples,
    zoneNames: status.zone.names,
    rssMb: rssMb(agentPid),
    cpuS,
    wallS,
    checkRuns: runs,
    idleCpuPct: idlePct,
    adds: { s: addS, ms: addMs, retries },
    method:
      `h1's plexusd in a ${HOSTS}-host fixture (vxlan; gossip, reconcile timers, health checks running), ` +
      `${o.names} containers by CNI ADD spread over the hosts (2/3 of the names by gossip), ` +
      `services web/api/db of ${MEMBERS_PER_SERVICE} members with http/tcp/exec checks every ${CHECK_INTERVAL_MS / 1000} s; ` +
      `dnsperf in a container on h1 to the bridge gateway :53, dnsmasq (hosts file, same names) on the gateway :${DNSMASQ_PORT}`,
  }
}
