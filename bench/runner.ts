// bench/runner (contract: ../shared/BENCH.md): how long 100 tasks take to run.
// Plexus: `plexctl job run` of one group of 100 exec tasks with a service on
// a 5-host fixture, until every allocation is running and the service's DNS
// name answers all 100 addresses (dig over TCP against h1's DNS server).
// The reference: the same 100 containers started with `podman run -d` one
// after the other on one host (Debian's podman, runc, its CNI bridge and
// host-local from containernetworking-plugins), as a script would.
// One run each (BENCH_RUNS), Plexus first then podman, in the same fixture;
// each task is `sleep` in a busybox root filesystem (no registry is reachable).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterDir } from '../netns-fixtures/lib/state.js'
import type { HostsReply } from '../src/api/contract/hosts.js'
import type { AllocLine } from '../src/api/contract/jobs.js'
import { createClient } from '../src/cli/client.js'
import { eventually, upCluster } from '../test/helpers/fixture.js'
import { busyboxRootfs, importImage, podmanCommand } from '../test/helpers/podman.js'
import { median, progress, report, round } from './lib/report.js'

const TASKS = Number(process.env.BENCH_RUNNER_TASKS ?? 100)
const HOSTS = 5
const RUNS = Number(process.env.BENCH_RUNS ?? 1)
const REF_PLUGINS = '/usr/lib/cni'
/** small rlimits: the sandbox caps them below podman's defaults (as in the podman tests) */
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']

const spec = (rootfs: string) => `name: bw
type: service
groups:
  - name: w
    count: ${TASKS}
    service: { name: bw }
    restart: { policy: never }
    tasks:
      - name: w
        driver: exec
        config: { command: ["sleep", "600"], rootfs: "${rootfs}" }
        resources: { cpu: 10, memoryMb: 8 }
        killTimeoutMs: 1000
`

interface DnsStatus {
  listening: { address: string }[]
}

async function main(): Promise<void> {
  const cleanups: (() => unknown)[] = []
  const dir = mkdtempSync(join(tmpdir(), 'plexus-bench-runner-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const plexus: number[] = []
  const podmanS: number[] = []
  try {
    const rootfs = busyboxRootfs(dir, ['sleep', 'sh'])
    if (!rootfs) throw new Error('busybox is not installed (make deps-bench)')
    progress(`fixture: ${HOSTS} hosts`)
    const c = upCluster({ teardown: (fn) => cleanups.push(fn) }, { hosts: HOSTS, prefix: 'brn' })
    const api = createClient(join(clusterDir(c.name), 'h1', 'run/plexusd.sock'))
    const alive = await eventually(
      async () =>
        (await api.call<HostsReply>('GET', '/v1/hosts')).hosts.filter((h) => h.state === 'alive').length ===
        HOSTS,
      60_000,
      500,
    )
    if (!alive) throw new Error(`not all ${HOSTS} hosts alive`)
    // the DNS server binds the bridge gateway once the host holds its lease
    const dns = await eventually(
      async () => (await api.call<DnsStatus>('GET', '/v1/dns')).listening[0]?.address,
      60_000,
      500,
    )
    if (!dns) throw new Error("h1's DNS server is not listening")
    const file = join(dir, 'bw.yaml')
    writeFileSync(file, spec(rootfs))

    // podman on h1: a bridge network from the reference plugins, the busybox image
    const net = join(dir, 'net')
    mkdirSync(net)
    writeFileSync(
      join(net, 'refnet.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'refnet',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni-bref0',
            isGateway: true,
            ipMasq: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.0.0/16' }]], dataDir: join(dir, 'ipam') },
          },
        ],
      }),
    )
    const podman = podmanCommand({
      dir,
      netns: `/run/netns/${c.name}-h1`,
      pluginDir: REF_PLUGINS,
      networkDir: net,
    })
    cleanups.push(() => {
      podman(['rm', '-f', '-t', '0', '-a'])
      podman(['system', 'reset', '-f'])
    })
    if (importImage(podman, dir, rootfs, 'localhost/bw') !== 0) throw new Error('podman import failed')
    // the first container initialises podman's storage and network: not what a script of 100 runs pays each time
    const start = (name: string) =>
      podman(['run', '-d', ...LIMITS, '--network', 'refnet', '--name', name, 'localhost/bw', 'sleep', '600'])
    const warm = start('warm')
    if (warm.status !== 0) throw new Error(`podman run: ${warm.stderr}`)
    podman(['rm', '-f', '-t', '0', 'warm'])

    for (let i = 0; i < RUNS; i++) {
      progress(`plexus: job run of ${TASKS} tasks`)
      const t0 = performance.now()
      const r = c.exec('h1', ['plexctl', 'job', 'run', file])
      if (r.status !== 0) throw new Error(`job run: ${r.stderr}`)
      const done = await eventually(
        async () => {
          const allocs = await api.call<AllocLine[]>('GET', '/v1/allocs?job=bw')
          if (allocs.filter((a) => a.status === 'running').length < TASKS) return false
          // over TCP: 100 addresses do not fit a UDP answer
          const dig = c.exec('h1', [
            'dig',
            '+tcp',
            '+short',
            '+time=2',
            '+tries=1',
            `@${dns}`,
            'bw.svc.plexus.internal',
          ])
          return dig.stdout.trim().split('\n').filter(Boolean).length === TASKS
        },
        600_000,
        200,
      )
      const s = (performance.now() - t0) / 1000
      if (!done) throw new Error(`plexus: not all ${TASKS} running and in DNS after ${s.toFixed(0)} s`)
      plexus.push(s)
      progress(`plexus: ${s.toFixed(1)} s; stopping the job`)
      c.exec('h1', ['plexctl', 'job', 'stop', 'bw'])
      const gone = await eventually(
        async () => (await api.call<AllocLine[]>('GET', '/v1/allocs?job=bw')).length === 0,
        300_000,
        1000,
      )
      if (!gone) throw new Error('plexus: the job did not stop')
      // the records go at once; wait until every host's runner has released its allocations too (their
      // directories go last), so podman does not share the CPU with the teardown
      const runnerDirs = [...Array(HOSTS).keys()].map((i) =>
        join(clusterDir(c.name), `h${i + 1}`, 'state/runner'),
      )
      const quiet = await eventually(
        () => runnerDirs.every((d) => !existsSync(d) || readdirSync(d).length === 0),
        300_000,
        1000,
      )
      if (!quiet) throw new Error('plexus: allocations left on the hosts after the stop')

      progress(`podman: ${TASKS} × podman run -d, one after the other`)
      const t1 = performance.now()
      for (let n = 0; n < TASKS; n++) {
        const p = start(`bw${n}`)
        if (p.status !== 0) throw new Error(`podman run ${n}: ${p.stderr}`)
      }
      const ps = (performance.now() - t1) / 1000
      podmanS.push(ps)
      progress(`podman: ${ps.toFixed(1)} s; removing`)
      podman(['rm', '-f', '-t', '0', '-a'])
    }
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn()
      } catch (err) {
        progress(`cleanup: ${(err as Error).message}`)
      }
    }
  }
  report('runner', {
    runs: RUNS,
    tasks: TASKS,
    hosts: HOSTS,
    plexus_s: round(median(plexus), 2),
    podman_s: round(median(podmanS), 2),
    ratio: round(median(plexus) / median(podmanS), 3),
  })
}

main().catch((err) => {
  progress(`bench/runner failed: ${(err as Error).stack ?? err}`)
  process.exit(1)
})
