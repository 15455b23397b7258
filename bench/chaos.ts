// bench/chaos (contract: ../shared/BENCH.md): a seeded randomized fault run on
// a 5-host fixture, 10 minutes by default (`--minutes N` or PLEXUS_CHAOS_MINUTES;
// `--seed S` replays a run: the seed is printed first). Faults one after the
// other (bench/lib/chaos.ts schedule): agent SIGKILL and restart, one host or
// half the hosts cut off the underlay, a host's subnet filled until ADD is
// refused, container churn, all through the fixture and the real CNI plugin.
// The network has 4 subnets of 5 addresses for 5 hosts and 60 s leases: one
// host always waits, and a cut longer than a lease lets it reclaim the cut
// host's subnet (test/integration/ipam-partition's scenario); an agent dead up
// to 20 s (and its start, slow on a loaded machine) stays inside the lease. In the background: hostile DNS queries from
// the containers, bad API requests to every agent, bad CNI calls on every
// host, the hostile gossip member now and then.
// Invariants, checked all along: no subnet on two bridges and no address on
// two live containers (every kernel, ~1 s), no address served for two
// containers by the agents' endpoint records (every 5 s, seen twice in a row),
// DNS from every live container answers its own name within 100 ms (every
// 5 s, agents that are up), every live probe container reaches every other
// within 5 s of a heal (and is never cut off by a fault that should not cut it),
// nothing left behind at the end (namespaces, links, rules, temp files).
import '../src/lib/polyfill.js'
import { execFile, spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import {
  clusterDir,
  ctrNs,
  hostNs,
  listCtrs,
  loadCluster,
  UNDERLAY_GATEWAY,
  underlayNs,
} from '../netns-fixtures/lib/state.js'
import { createClient } from '../src/cli/client.js'
import { seededRng } from '../src/cluster/sim/clock.js'
import { Cluster, runGossipAttacker, uniqueName } from '../test/helpers/fixture.js'
import { netconf, plugin } from '../test/integration/cni/plugin.js'
import {
  type CtrKernel,
  type EndpointRow,
  type Fault,
  type FaultKind,
  fuzzApiRequest,
  fuzzBytes,
  type HostKernel,
  kernelViolations,
  leaked,
  liveContainers,
  rssGrowthPerHour,
  schedule,
  servedTwice,
} from './lib/chaos.js'
import { rssMb } from './lib/proc.js'
import { progress, quantile, REPO, report, round } from './lib/report.js'

const HOSTS = 5
const CIDR = '10.250.0.0/16'
const AGENT_CONFIG = {
  network: {
    seed: {
      Network: CIDR,
      SubnetLen: 29,
      SubnetMin: '10.250.0.8',
      SubnetMax: '10.250.0.32',
      Backend: { Type: 'vxlan' },
    },
    leaseTtlMs: 60_000,
    leaseRenewMs: 2000,
    leaseClockDriftMs: 1000,
    leaseSettleMs: 3000,
  },
  // leases this short are confirmed by node records refreshed often (src/ipam/README.md)
  cluster: { refreshIntervalMs: 3000 },
}
const DNS_LIMIT_MS = 100
const HEAL_LIMIT_MS = 5000
const HALF_BRIDGE = 'chaos0'

function args(): { minutes: number; seed: number } {
  const a = process.argv.slice(2)
  const opt = (name: string) => {
    const i = a.indexOf(name)
    return i >= 0 ? a[i + 1] : undefined
  }
  const minutes = Number(opt('--minutes') ?? process.env.PLEXUS_CHAOS_MINUTES ?? 10)
  const seed = Number(opt('--seed') ?? process.env.PLEXUS_CHAOS_SEED ?? randomInt(1, 2 ** 31))
  if (!(minutes > 0) || !Number.isInteger(seed))
    throw new Error('usage: bench/chaos [--minutes N] [--seed S] (N > 0, S an integer)')
  return { minutes, seed }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** a command without blocking the checks that run meanwhile: status and output */
const exec = (cmd: string, argv: string[], timeoutMs = 120_000) =>
  new Promise<{ ok: boolean; out: string }>((resolve) =>
    execFile(cmd, argv, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ ok: !err, out: `${stdout}${stderr}` }),
    ),
  )
const CLUSTER_CLI = join(REPO, 'netns-fixtures/cluster')

interface Listing {
  hosts: {
    name: string
    ns: string
    socket: string
    agentPid: number | null
    exits: { pid: number; code?: number; signal?: string; asked?: string; at: string }[]
  }[]
  containers: { name: string; host: string; ns: string }[]
}

/** names the machine shows now: network namespaces, links and rules of its own namespace, /tmp entries */
async function machineNames(): Promise<string[]> {
  const ns = (await exec('ip', ['netns', 'list'])).out.split('\n').map((l) => `netns ${l.split(' ')[0]}`)
  const links = (await exec('ip', ['-o', 'link'])).out
    .split('\n')
    .map((l) => `link ${l.split(':')[1]?.trim().split('@')[0]}`)
  const rules = (await exec('ip', ['rule'])).out.split('\n').map((l) => `rule ${l.trim()}`)
  const tmp = readdirSync('/tmp').map((f) => `tmp /tmp/${f}`)
  return [...ns, ...links, ...rules, ...tmp].filter((x) => !x.endsWith(' '))
}

/** temp files the agents and the plugin left in the hosts' state and run dirs (while the cluster is up) */
function tempFiles(name: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const f of existsSync(d) ? readdirSync(d) : []) {
      const p = join(d, f)
      const st = statSync(p, { throwIfNoEntry: false })
      if (st?.isDirectory()) walk(p)
      else if (/\.tmp|~$|^\.[^.]/.test(f)) out.push(p)
    }
  }
  walk(clusterDir(name))
  return out.filter((p) => !p.includes('/ctrs/'))
}

async function main(): Promise<void> {
  const { minutes, seed } = args()
  const durationMs = minutes * 60_000
  progress(`chaos: seed ${seed}, ${minutes} min (replay: bench/chaos --seed ${seed} --minutes ${minutes})`)
  const r = seededRng(seed)
  const c = new Cluster(uniqueName('ch'))
  const fx = (argv: string[], timeoutMs?: number) => exec(CLUSTER_CLI, argv, timeoutMs)
  const list = async () => JSON.parse((await fx(['ls', '--name', c.name, '-o', 'json'])).out) as Listing

  const before = await machineNames()
  const faults: Record<string, number> = {}
  const violations = new Map<string, { first: string; count: number }>()
  const violation = (kind: string, what: string) => {
    const k = `${kind}: ${what}`
    const v = violations.get(k)
    if (v) v.count++
    else {
      violations.set(k, { first: new Date().toISOString(), count: 1 })
      progress(`VIOLATION ${k}`)
    }
  }
  const outage: Record<string, number> = {}
  const fuzz = { dns: 0, api: 0, cni: 0, gossip: 0 }
  const fuzzFindings: Record<string, number> = {}
  const finding = (what: string) => {
    if (!fuzzFindings[what]) progress(`fuzz finding: ${what}`)
    fuzzFindings[what] = (fuzzFindings[what] ?? 0) + 1
  }
  const dnsMs: number[] = []
  /** the fixture's stub DNS (a trivial server on the same machine), asked each DNS round: the machine's share */
  const refMs: number[] = []
  /** DNS rounds with a late or missing answer in which the stub was late (or silent) too */
  let slowWithRef = 0
  let slowRounds = 0
  const rss: { pid: number; t: number; mb: number }[] = []
  /** from `cluster start` to the restarted agent's API answering */
  const restartMs: number[] = []
  const checks = { kernel: 0, endpoints: 0, dns: 0, reach: 0, reachUndecided: 0 }

  progress(`fixture ${c.name}: ${HOSTS} hosts, 4 subnets of ${CIDR} /29`)
  const up = await fx(
    [
      'up',
      '--name',
      c.name,
      '--hosts',
      String(HOSTS),
      '--cidr',
      CIDR,
      '--no-wait-lease',
      '--wait',
      '180',
      '--agent-config',
      JSON.stringify(AGENT_CONFIG),
    ],
    300_000,
  )
  let fixtureUp = true
  try {
    if (!up.ok) throw new Error(`cluster up failed: ${up.out}`)
    const state = loadCluster(c.name)
    if (!state) throw new Error('fixture state missing')
    const hosts = state.hosts.map((h) => h.name)
    const socketOf = new Map(state.hosts.map((h) => [h.name, h.socket]))
    await exec('ip', ['-n', underlayNs(c.name), 'link', 'add', HALF_BRIDGE, 'up', 'type', 'bridge'])

    /** agents the run stopped (their API and DNS are down on purpose) */
    const down = new Set<string>()
    /** the side of the current partition that is cut off (empty: none) */
    let cut = new Set<string>()
    /** the fault on now, or the last one (outages are counted to it) */
    let current: FaultKind | 'start' = 'start'
    /** when the last heal (fault end) was, and whether full reachability has been seen since */
    let healedAt: number | undefined

    const api = <T>(h: string, path: string) =>
      createClient(socketOf.get(h) as string).call<T>('GET', path, undefined, { timeoutMs: 5000 })
    const subnetState = async (h: string) =>
      (await api<{ self: { state: string } }>(h, '/v1/subnets').catch(() => undefined))?.self.state
    const deadline = Date.now() + 180_000
    while ((await Promise.all(hosts.map(subnetState))).filter((s) => s === 'acquired').length < 4) {
      if (Date.now() > deadline) throw new Error('four hosts never held a subnet')
      await sleep(1000)
    }
    // a probe container on every host with a subnet (the waiting one refuses)
    for (const h of hosts) {
      const ok = (
        await fx(['run', '--name', c.name, '--host', h, '--ctr', `p${h}`, '--', 'sleep', '1000000'])
      ).ok
      progress(`probe container p${h} on ${h}: ${ok ? 'started' : 'refused (no subnet)'}`)
    }

    // --- the kernels, every host and every container the fixture knows ---
    const kernel = async (): Promise<{ hosts: HostKernel[]; ctrs: CtrKernel[]; gw: Map<string, string> }> => {
      const ctrs = listCtrs(c.name)
      const script = [
        ...hosts.map(
          (h) => `echo "H ${h}"; ip -n ${hostNs(c.name, h)} -4 -o addr show dev plexus0 2>/dev/null`,
        ),
        ...ctrs.map(
          (x) => `echo "C ${x.name} ${x.host}"; ip -n ${x.ns} -4 -o addr show dev eth0 2>/dev/null`,
        ),
      ].join('; ')
      const out = (await exec('sh', ['-c', script])).out
      const hk: HostKernel[] = []
      const ck: CtrKernel[] = []
      let cur: string[] | undefined
      for (const line of out.split('\n')) {
        const m = /^(H|C) (\S+)(?: (\S+))?$/.exec(line)
        if (m?.[1] === 'H') {
          hk.push({ host: m[2] as string, bridge: [] })
          cur = hk[hk.length - 1]?.bridge
        } else if (m?.[1] === 'C') {
          ck.push({ ctr: m[2] as string, host: m[3] as string, addrs: [] })
          cur = ck[ck.length - 1]?.addrs
        } else {
          const a = /inet (\S+)/.exec(line)?.[1]
          if (a && cur) cur.push(a)
        }
      }
      const gw = new Map(
        hk.flatMap((h) => (h.bridge[0] ? [[h.host, h.bridge[0].split('/')[0] as string]] : [])),
      )
      return { hosts: hk, ctrs: ck, gw }
    }

    /** when each container was started: DNS is asked about it from 10 s on */
    const ctrBirth = new Map<string, number>()
    let running = true
    const loops: Promise<void>[] = []
    const every = (ms: number, fn: () => Promise<void>) =>
      loops.push(
        (async () => {
          while (running) {
            const t0 = Date.now()
            await fn().catch((err: Error) => progress(`check error: ${err.message}`))
            await sleep(Math.max(0, ms - (Date.now() - t0)))
          }
        })(),
      )

    let lastDup = new Set<string>()
    every(5000, async () => {
      const views = await Promise.all(
        hosts
          .filter((h) => !down.has(h))
          .map((h) =>
            api<{ endpoints: EndpointRow[] }>(h, '/v1/endpoints').then(
              (v) => v.endpoints,
              () => [],
            ),
          ),
      )
      const dup = new Set(servedTwice(views))
      for (const a of dup)
        if (lastDup.has(a)) violation('held twice (endpoint records)', `${a} served for two containers`)
      lastDup = dup
      checks.endpoints++
    })

    const dig = (ns: string, server: string, name: string) =>
      exec('ip', ['netns', 'exec', ns, 'dig', `@${server}`, '+time=1', '+tries=1', name], 10_000)
    const queryMs = (out: string) => Number(/Query time: (\d+) msec/.exec(out)?.[1] ?? Number.NaN)
    every(5000, async () => {
      const k = await kernel()
      const ref = dig(underlayNs(c.name), UNDERLAY_GATEWAY, 'example.test').then((d) => queryMs(d.out))
      let slow = false
      await Promise.all(
        liveContainers(k.hosts, k.ctrs)
          .filter((x) => !down.has(x.host) && Date.now() - (ctrBirth.get(x.ctr) ?? 0) > 10_000)
          .map(async (x) => {
            const gw = k.gw.get(x.host)
            const ip = x.addrs[0]?.split('/')[0]
            if (!gw || !ip) return
            const name = `${x.ctr}.ctr.plexus.internal`
            const d = await dig(ctrNs(c.name, x.ctr), gw, name)
            const ms = queryMs(d.out)
            if (down.has(x.host)) return // killed while the query ran
            checks.dns++
            if (!Number.isFinite(ms) || ms > DNS_LIMIT_MS) slow = true
            if (!Number.isFinite(ms)) violation('dns', `no answer from ${x.host} for ${name}`)
            else {
              dnsMs.push(ms)
              if (ms > DNS_LIMIT_MS) violation('dns', `${x.host} answered ${name} in ${ms} ms`)
              const answer = new RegExp(
                `^${name.replaceAll('.', '\\.')}\\.\\s+\\d+\\s+IN\\s+A\\s+(\\S+)`,
                'm',
              ).exec(d.out)?.[1]
              if (answer !== ip)
                violation('dns', `${x.host} answered ${name} with ${answer ?? 'nothing'}, not ${ip}`)
            }
          }),
      )
      const refTook = await ref
      refMs.push(Number.isFinite(refTook) ? refTook : 1000)
      if (slow) slowRounds++
      if (slow && !(refTook <= DNS_LIMIT_MS)) slowWithRef++
    })

    // Every second: the kernels (nothing held twice), then reachability between the live probe containers
    // on the same side of any cut. Times are the rounds' starts: a round can take seconds on a loaded machine,
    // and a ping that failed was sent after its round began. A heal is late when a round begun 5 s after it
    // still finds a pair that does not answer.
    let failingSince: number | undefined
    let failingKind: string = current
    every(1000, async () => {
      const started = Date.now()
      const k = await kernel()
      for (const v of kernelViolations(k.hosts, k.ctrs)) violation('held twice (kernel)', v)
      checks.kernel++
      const probes = liveContainers(k.hosts, k.ctrs).filter((x) => x.ctr.startsWith('p'))
      const side = (h: string) => cut.has(h)
      const results = await Promise.all(
        probes.map(async (src) => {
          const dsts = probes
            .filter((d) => d !== src && side(d.host) === side(src.host))
            .map((d) => d.addrs[0]?.split('/')[0] as string)
          if (!dsts.length) return []
          const sh = `for d in ${dsts.join(' ')}; do (ping -n -c1 -W1 -q $d >/dev/null 2>&1 && echo ok $d || echo no $d) & done; wait`
          const out = (await exec('ip', ['netns', 'exec', ctrNs(c.name, src.ctr), 'sh', '-c', sh], 10_000))
            .out
          // a probe that did not run in time (a starved machine) is no answer either way
          if (dsts.some((d) => !out.includes(`ok ${d}\n`) && !out.includes(`no ${d}\n`))) return undefined
          return dsts.filter((d) => out.includes(`no ${d}\n`)).map((d) => `${src.ctr}→${d}`)
        }),
      )
      const failed = results.flatMap((x) => x ?? [])
      if (!failed.length && results.includes(undefined)) {
        checks.reachUndecided++
        return
      }
      checks.reach++
      if (!failed.length) {
        if (failingSince !== undefined) {
          const s = (started - failingSince) / 1000
          outage[failingKind] = Math.max(outage[failingKind] ?? 0, s)
          progress(`reachability back after ${round(s, 1)} s (${failingKind})`)
        }
        failingSince = undefined
        if (healedAt !== undefined && started >= healedAt) healedAt = undefined
        return
      }
      if (failingSince === undefined) {
        failingSince = started
        failingKind = current
        progress(`reachability lost (${current}): ${failed.join(' ')}`)
      }
      if (healedAt !== undefined && started - healedAt >= HEAL_LIMIT_MS) {
        violation(
          'reach after heal',
          `${failed.join(' ')} ${round((started - healedAt) / 1000, 1)} s after ${current} ended`,
        )
        healedAt = undefined
      }
    })

    // RSS of every agent, every 10 s
    every(10_000, async () => {
      for (const h of (await list()).hosts) {
        const status = `/proc/${h.agentPid}/status`
        if (!h.agentPid || !existsSync(status)) continue
        rss.push({ pid: h.agentPid, t: Date.now(), mb: rssMb(h.agentPid) })
      }
    })

    // --- fuzz in the background ---
    // one DNS fuzzer in each probe container, at its host's DNS
    const k0 = await kernel()
    const fuzzProcs = liveContainers(k0.hosts, k0.ctrs).map((x, i) => {
      const p = spawn(
        'ip',
        [
          'netns',
          'exec',
          ctrNs(c.name, x.ctr),
          process.execPath,
          join(REPO, 'dist/bench/chaos-dns-fuzz.js'),
          k0.gw.get(x.host) as string,
          String(seed + i),
          '10',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let out = ''
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString()
      })
      return { p, out: () => out }
    })

    every(500, async () => {
      const h = hosts[Math.floor(r() * hosts.length)] as string
      if (down.has(h)) return
      const q = fuzzApiRequest(r)
      fuzz.api++
      const status = await new Promise<number>((resolve) => {
        const req = request(
          { socketPath: socketOf.get(h), method: q.method, path: q.path, timeout: 5000 },
          (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode ?? 0))
          },
        )
        req.on('error', () => resolve(0))
        req.on('timeout', () => req.destroy())
        req.end(q.body)
      })
      if (status >= 500) finding(`api ${status} on ${q.method} ${q.path.slice(0, 40)}`)
      if (status === 0 && !down.has(h)) finding('api no answer')
    })

    every(5000, async () => {
      const h = hosts[Math.floor(r() * hosts.length)] as string
      if (down.has(h)) return
      // never GC (with a valid config it removes every attachment not listed: its job) and never the
      // machine's own namespace: an ADD that wrongly passed would change the shared host
      const command = ['ADD', 'DEL', 'CHECK', 'VERSION', fuzzBytes(r, 6).toString('hex')][
        Math.floor(r() * 5)
      ] as string
      const netns = [`/var/run/netns/${hostNs(c.name, h)}`, '/var/run/netns/chaos-none', undefined][
        Math.floor(r() * 3)
      ]
      const conf = [
        fuzzBytes(r, 200).toString('latin1'),
        netconf(c, h),
        netconf(c, h, { cniVersion: fuzzBytes(r, 4).toString('hex') }),
        netconf(c, h, { runtimeConfig: { ips: [`10.250.0.${Math.floor(r() * 256)}/29`], mac: 'zz' } }),
      ][Math.floor(r() * 4)]
      fuzz.cni++
      const res = plugin(
        c,
        h,
        { command, containerId: `fuzz${fuzzBytes(r, 4).toString('hex')}`, ...(netns ? { netns } : {}) },
        conf,
      )
      if (command === 'ADD' && res.status === 0)
        violation('cni', `ADD accepted a hostile call (netns ${netns})`)
      if (res.status !== 0 && typeof res.out?.code !== 'number')
        finding(`cni exit ${res.status} without an error code`)
    })

    // --- the faults ---
    let n = 0
    const run = async (h: string, ctr: string) => {
      const ok = (await fx(['run', '--name', c.name, '--host', h, '--ctr', ctr, '--', 'sleep', '1000000'])).ok
      if (ok) ctrBirth.set(ctr, Date.now())
      return ok
    }
    const rm = (ctr: string) => fx(['rm', '--name', c.name, '--ctr', ctr])
    // straight to the underlay's links (what `cluster exec --underlay` runs), so a cut starts and heals at once
    const underlay = (...argv: string[]) => exec('ip', ['-n', underlayNs(c.name), 'link', 'set', ...argv])
    const endAt = Date.now() + durationMs
    const plan = schedule(seed, durationMs, hosts)
    let gaps = 0
    for (const f of plan as Fault[]) {
      if (Date.now() >= endAt) break
      current = f.kind
      // a heal is judged in the quiet gap after it (longer than the 5 s), not once the next fault is on
      healedAt = undefined
      faults[f.kind] = (faults[f.kind] ?? 0) + 1
      progress(`fault ${f.kind} on ${f.hosts.join(',')} (hold ${round(f.holdMs / 1000, 1)} s)`)
      if (f.kind === 'kill') {
        const h = f.hosts[0] as string
        down.add(h)
        await fx(['stop', '--name', c.name, '--host', h, '--signal', 'KILL'])
        await sleep(f.holdMs)
        // back when its API answers: `cluster start` also waits for a lease, which a restart past the
        // lease's fence (a slow start on a loaded machine) no longer finds free
        const t0 = Date.now()
        const starting = fx(['start', '--name', c.name, '--host', h])
        let answered = false
        const answers = async () => {
          while (
            !answered &&
            !(await api(h, '/v1/status').then(
              () => true,
              () => false,
            ))
          )
            await sleep(200)
        }
        await Promise.race([starting, answers()])
        answered = true
        restartMs.push(Date.now() - t0)
        void starting.then((s) => running && !s.ok && progress(`start ${h}: ${s.out.split('\n')[0]}`))
        down.delete(h)
      } else if (f.kind === 'partition-one' || f.kind === 'partition-half') {
        cut = new Set(f.hosts)
        for (const h of f.hosts)
          await underlay(`u-${h}`, ...(f.kind === 'partition-one' ? ['nomaster'] : ['master', HALF_BRIDGE]))
        await sleep(f.holdMs)
        for (const h of f.hosts) await underlay(`u-${h}`, 'master', 'br0')
        cut = new Set()
      } else if (f.kind === 'exhaust') {
        const h = f.hosts[0] as string
        const made: string[] = []
        for (let i = 0; i < 8; i++) {
          const ctr = `e${n++}`
          if (!(await run(h, ctr))) break
          made.push(ctr)
        }
        progress(`exhaust ${h}: ${made.length} containers until refused`)
        for (const ctr of made) await rm(ctr)
      } else {
        const h = f.hosts[0] as string
        const ctr = `c${n++}`
        if (await run(h, ctr)) {
          await sleep(2000)
          await rm(ctr)
        }
      }
      healedAt = Date.now()
      await sleep(f.gapMs)
      if (gaps++ % 3 === 2 && Date.now() < endAt) {
        const [from, to] = [...hosts].sort(() => r() - 0.5)
        const g = runGossipAttacker(c, from as string, hosts.indexOf(to as string) + 1)
        fuzz.gossip += g.stdout.split('\n').filter(Boolean).length
      }
    }
    current = 'end' as FaultKind
    // the last heal gets its chance; then the background stops
    const settle = Date.now() + 30_000
    while (healedAt !== undefined && Date.now() < settle) await sleep(500)
    running = false
    for (const f of fuzzProcs) f.p.kill('SIGTERM')
    await Promise.all(loops)
    await sleep(500)
    for (const f of fuzzProcs) fuzz.dns += Number(f.out().trim() || 0)

    const final = await list()
    const crashes = final.hosts.flatMap((h) =>
      h.exits
        .filter((e) => !e.asked)
        .map((e) => `${h.name} pid ${e.pid} ${e.signal ?? `code ${e.code}`} at ${e.at}`),
    )
    for (const cr of crashes) progress(`CRASH ${cr}`)
    const temp = tempFiles(c.name)
    for (const f of temp) violation('leak', `temp file ${f}`)

    if (violations.size || crashes.length) {
      // the agents' logs outlive the fixture, for whoever looks into what the run found
      const keep = `/tmp/chaos-logs-${seed}`
      mkdirSync(keep, { recursive: true })
      for (const h of state.hosts) cpSync(join(h.dir, 'plexusd.log'), join(keep, `${h.name}.log`))
      progress(`agent logs kept in ${keep}`)
    }
    const downRes = await fx(['down', '--name', c.name])
    fixtureUp = false
    if (!downRes.ok) violation('leak', `cluster down failed: ${downRes.out}`)
    const after = await machineNames()
    for (const x of leaked(before, after, (s) => s.includes(c.name))) violation('leak', x)

    const byKind: Record<string, number> = {}
    for (const [k, v] of violations)
      byKind[k.split(':')[0] as string] = (byKind[k.split(':')[0] as string] ?? 0) + v.count
    const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0)
    report('chaos', {
      runs: 1,
      minutes,
      seed,
      hosts: HOSTS,
      faults: total(faults),
      faults_by_kind: JSON.stringify(faults),
      violations: total(byKind),
      violations_by_kind: JSON.stringify(byKind),
      violation_samples: JSON.stringify([...violations.keys()].slice(0, 8)),
      crashes: crashes.length,
      longest_outage_s: round(Math.max(0, ...Object.values(outage)), 1),
      longest_outage_s_by_kind: JSON.stringify(
        Object.fromEntries(Object.entries(outage).map(([k, v]) => [k, round(v, 1)])),
      ),
      fuzz_inputs: total(fuzz),
      fuzz_by_kind: JSON.stringify(fuzz),
      fuzz_findings: JSON.stringify(fuzzFindings),
      dns_p50_ms: round(quantile(dnsMs, 0.5), 1),
      dns_max_ms: dnsMs.length ? Math.max(...dnsMs) : null,
      ref_dns_p50_ms: round(quantile(refMs, 0.5), 1),
      ref_dns_max_ms: refMs.length ? Math.max(...refMs) : null,
      dns_slow_rounds: slowRounds,
      dns_slow_rounds_ref_slow_too: slowWithRef,
      checks: JSON.stringify(checks),
      restart_to_api_max_s: restartMs.length ? round(Math.max(...restartMs) / 1000, 1) : null,
      rss_growth_mb_per_h: round(rssGrowthPerHour(rss), 1),
      rss_max_mb: round(Math.max(0, ...rss.map((s) => s.mb)), 1),
    })
  } finally {
    if (fixtureUp) await fx(['down', '--name', c.name])
  }
}

main().catch((err: Error) => {
  progress(`chaos failed: ${err.stack ?? err.message}`)
  process.exitCode = 1
})
