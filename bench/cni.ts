// bench/cni (contract: ../shared/BENCH.md): CNI ADD and DEL latency of the
// plexus plugin (with a published port; masquerade is the cluster's standing
// rule) beside the reference chain from Debian's containernetworking-plugins
// doing the same work: bridge + host-local with ipMasq, then portmap,
// cniVersion 1.0.0. Both run in the same fixture host namespace, interleaved
// A B A B, each on a fresh container namespace; the timed span is what a
// runtime waits for: every plugin process of the chain, start to exit.
//
// The driver re-runs itself inside the host namespace (`--inner`) so plugins
// are spawned directly, as a runtime spawns them, with no `ip netns exec` in
// the timed span.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median, progress, quantile, REPO, report, round } from './lib/report.js'

const CLUSTER = join(REPO, 'netns-fixtures/cluster')
const PLUGIN = join(REPO, 'dist/cni/bin/plexus')
// what the native front end runs when it cannot forward: the whole plugin in Node
const NODE_PLUGIN = join(REPO, 'dist/cni/bin/plexus-node')
const REF = '/usr/lib/cni'
const RUNS = Number(process.env.BENCH_RUNS ?? 40)
const WARMUP = 3

interface Samples {
  plexusAdd: number[]
  plexusDel: number[]
  /** the same ADD/DEL without a published port: the plugin and the attachment alone */
  bareAdd: number[]
  bareDel: number[]
  refAdd: number[]
  refDel: number[]
  versionMs: number[]
  nodeVersionMs: number[]
}

function invoke(binary: string, env: Record<string, string>, conf: unknown): { ms: number; out: string } {
  const start = process.hrtime.bigint()
  const r = spawnSync(binary, [], {
    input: JSON.stringify(conf),
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: REF, ...env },
  })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`${binary} ${env.CNI_COMMAND} failed: ${r.stdout}${r.stderr}`)
  return { ms, out: r.stdout }
}

/**
 * Runs inside the fixture host's namespace; prints the samples as JSON. The
 * container namespaces <nsPrefix><i> come from the outer process: made in
 * here, under `ip netns exec`'s private mounts, the agent could not open them.
 */
function inner(socket: string, nsPrefix: string): void {
  const dataDir = mkdtempSync('/tmp/plexus-bench-cni-')
  const portMappings = (hostPort: number) => [{ hostPort, containerPort: 80, protocol: 'tcp' }]
  const plexusConf = {
    cniVersion: '1.1.0',
    name: 'plexus',
    type: 'plexus',
    socket,
    runtimeConfig: { portMappings: portMappings(18080) },
  }
  const refConfs = [
    {
      cniVersion: '1.0.0',
      name: 'refnet',
      type: 'bridge',
      bridge: 'cni-ref0',
      isGateway: true,
      ipMasq: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]], dataDir },
    },
    {
      cniVersion: '1.0.0',
      name: 'refnet',
      type: 'portmap',
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: portMappings(18090) },
    },
  ]
  const s: Samples = {
    plexusAdd: [],
    plexusDel: [],
    bareAdd: [],
    bareDel: [],
    refAdd: [],
    refDel: [],
    versionMs: [],
    nodeVersionMs: [],
  }
  const { runtimeConfig: _, ...bareConf } = plexusConf
  const env = (cmd: string, id: string, netns: string) => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1',
  })
  const plexus = (id: string, netns: string, conf: object = plexusConf) => {
    const add = invoke(PLUGIN, env('ADD', id, netns), conf).ms
    const del = invoke(PLUGIN, env('DEL', id, netns), conf).ms
    return { add, del }
  }
  const reference = (id: string, netns: string) => {
    // libcni's way: each plugin gets the previous result; DEL in reverse with the final result
    let prev: unknown
    let add = 0
    for (const c of refConfs) {
      const r = invoke(join(REF, c.type), env('ADD', id, netns), prev ? { ...c, prevResult: prev } : c)
      add += r.ms
      prev = JSON.parse(r.out)
    }
    let del = 0
    for (const c of [...refConfs].reverse())
      del += invoke(join(REF, c.type), env('DEL', id, netns), { ...c, prevResult: prev }).ms
    return { add, del }
  }
  try {
    for (let i = 0; i < WARMUP + RUNS; i++) {
      {
        const netns = `/run/netns/${nsPrefix}${i}`
        // alternate which side goes first, so neither always runs on a warmer machine
        const order = i % 2 === 0 ? ['plexus', 'ref', 'bare'] : ['ref', 'bare', 'plexus']
        for (const side of order) {
          const r =
            side === 'plexus'
              ? plexus(`px-${i}`, netns)
              : side === 'bare'
                ? plexus(`bare-${i}`, netns, bareConf)
                : reference(`ref-${i}`, netns)
          if (i < WARMUP) continue
          const [adds, dels] =
            side === 'plexus'
              ? [s.plexusAdd, s.plexusDel]
              : side === 'bare'
                ? [s.bareAdd, s.bareDel]
                : [s.refAdd, s.refDel]
          adds.push(r.add)
          dels.push(r.del)
        }
        if (i >= WARMUP) {
          // the plugin's own cost: the front end through the agent, and the Node plugin alone
          s.versionMs.push(invoke(PLUGIN, { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.1.0', socket }).ms)
          s.nodeVersionMs.push(invoke(NODE_PLUGIN, { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.1.0' }).ms)
        }
      }
      if (i >= WARMUP && (i - WARMUP + 1) % 10 === 0) progress(`${i - WARMUP + 1}/${RUNS} runs`)
    }
  } finally {
    spawnSync('ip', ['link', 'delete', 'cni-ref0'])
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.stdout.write(`${JSON.stringify(s)}\n`)
}

function cluster(...args: string[]): string {
  return execFileSync(CLUSTER, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

async function outer(): Promise<void> {
  for (const f of [PLUGIN, join(REF, 'bridge'), join(REF, 'portmap'), join(REF, 'host-local')]) {
    // the reference plugins come from the Makefile's APT lists (`make bench` installs them)
    if (!existsSync(f))
      throw new Error(`${f} is missing: run '${f.startsWith(REF) ? 'make deps-bench' : 'make build'}' first`)
  }
  const name = `bcni${process.pid % 10000}`
  progress(`fixture ${name}: 1 host`)
  cluster('up', '--name', name, '--hosts', '1')
  let samples: Samples
  const nsPrefix = `${name}-c`
  const containers = Array.from({ length: WARMUP + RUNS }, (_, i) => `${nsPrefix}${i}`)
  try {
    for (const ns of containers) execFileSync('ip', ['netns', 'add', ns])
    const socket = `/run/plexus-fixture/${name}/h1/run/plexusd.sock`
    // wait for the lease and the bridge (STATUS succeeds, plexus0 exists)
    for (let i = 0; ; i++) {
      const st = spawnSync('ip', ['netns', 'exec', `${name}-h1`, PLUGIN], {
        input: JSON.stringify({ cniVersion: '1.1.0', name: 'plexus', type: 'plexus', socket }),
        env: { CNI_COMMAND: 'STATUS', CNI_PATH: REF, PATH: process.env.PATH },
      })
      const bridge = spawnSync('ip', ['-n', `${name}-h1`, 'link', 'show', 'plexus0']).status === 0
      if (st.status === 0 && bridge) break
      if (i > 150) throw new Error('the fixture host never became ready')
      await new Promise((r) => setTimeout(r, 200))
    }
    progress(`${RUNS} runs (+${WARMUP} warm-up), plexus and reference interleaved`)
    const out = execFileSync(
      'ip',
      [
        'netns',
        'exec',
        `${name}-h1`,
        process.execPath,
        fileURLToPath(import.meta.url),
        '--inner',
        socket,
        nsPrefix,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 16 << 20,
      },
    )
    samples = JSON.parse(out.trim().split('\n').pop() as string) as Samples
  } finally {
    progress('teardown')
    for (const ns of containers) spawnSync('ip', ['netns', 'delete', ns])
    cluster('down', '--name', name)
  }
  const r = (v: number) => round(v, 1)
  const pAdd = median(samples.plexusAdd)
  const rAdd = median(samples.refAdd)
  const pDel = median(samples.plexusDel)
  const rDel = median(samples.refDel)
  report('cni', {
    runs: RUNS,
    plexus_add_ms: r(pAdd),
    ref_add_ms: r(rAdd),
    add_ratio: round(pAdd / rAdd, 2),
    plexus_del_ms: r(pDel),
    ref_del_ms: r(rDel),
    del_ratio: round(pDel / rDel, 2),
    plexus_add_p95_ms: r(quantile(samples.plexusAdd, 0.95)),
    ref_add_p95_ms: r(quantile(samples.refAdd, 0.95)),
    plexus_del_p95_ms: r(quantile(samples.plexusDel, 0.95)),
    ref_del_p95_ms: r(quantile(samples.refDel, 0.95)),
    plugin_version_ms: r(median(samples.versionMs)),
    node_plugin_version_ms: r(median(samples.nodeVersionMs)),
    plexus_noport_add_ms: r(median(samples.bareAdd)),
    plexus_noport_del_ms: r(median(samples.bareDel)),
    ref_chain: 'bridge+host-local(ipMasq)+portmap, cniVersion 1.0.0',
  })
}

if (process.argv[2] === '--inner') inner(process.argv[3] as string, process.argv[4] as string)
else
  outer().catch((err) => {
    progress(`bench/cni failed: ${(err as Error).message}`)
    process.exit(1)
  })
