// plexctl trace on the test bed: 2 hosts (vxlan, iptables), a container on
// each attached by the real CNI plugin, one fixture for every case: a
// healthy path, then one hop broken at a time, each named by the trace.
import http from 'node:http'
import t from 'tap'
import { hostNs, loadCluster } from '../../../netns-fixtures/lib/state.js'
import { type Cluster, eventually, run, upCluster } from '../../helpers/fixture.js'

// one fixture for every case; under load (2 shared cores) `up` alone takes up to a minute
t.setTimeout(600_000)

interface Hop {
  host: string
  component: string
  action: string
  object: string
  record?: string
  cause?: string
}
interface Trace {
  hops: Hop[]
  diagnosis: { ok: boolean; hop?: number; line: string }
  durationMs: number
}

/** plexctl trace -o json on a host; exit 1 (a broken path) still prints the answer */
function trace(c: Cluster, host: string, args: string[]): Trace {
  const r = c.exec(host, ['plexctl', '-o', 'json', 'trace', ...args])
  if ((r.status !== 0 && r.status !== 1) || !r.stdout.trim())
    throw new Error(`plexctl trace ${args.join(' ')} failed (${r.status}): ${r.stderr}`)
  return JSON.parse(r.stdout) as Trace
}

/**
 * POST /v1/trace straight to a host's API socket: no plexctl process to start, so a hop broken by
 * hand is traced within milliseconds, well before the datapath's next repair pass
 */
function apiTrace(c: Cluster, host: string, body: Record<string, unknown>): Promise<Trace> {
  const socketPath = loadCluster(c.name)?.hosts.find((h) => h.name === host)?.socket as string
  const data = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, method: 'POST', path: '/v1/trace', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d
        })
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(JSON.parse(text) as Trace)
            : reject(new Error(`${res.statusCode}: ${text}`)),
        )
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

/** a command in a host's namespace, without the fixture CLI's node start-up */
const inHost = (c: Cluster, host: string, cmd: string[]) =>
  run('ip', ['netns', 'exec', hostNs(c.name, host), ...cmd])

const broken = (tr: Trace) => (tr.diagnosis.hop === undefined ? undefined : tr.hops[tr.diagnosis.hop])
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

t.test(
  'trace between two hosts: healthy, FDB deleted, foreign DROP, remote agent killed',
  { timeout: 540_000 },
  async (t) => {
    const started = Date.now()
    // full passes every 5 s (the most the datapath allows): the window in which a hop deleted by hand stays broken
    const c = upCluster(t, {
      hosts: 2,
      prefix: 'tr',
      agentConfig: { datapath: { reconcileIntervalMs: 5000 } },
    })
    t.equal(c.run('h1', 'c1', ['sleep', '600']).status, 0, 'c1 on h1')
    const r2 = c.run('h2', 'c2', ['busybox', 'httpd', '-f', '-p', '8080', '-h', '/tmp'])
    t.equal(r2.status, 0, `c2 on h2: ${r2.stderr}`)
    const ip2 = /: (\d+\.\d+\.\d+\.\d+)\//.exec(r2.stdout)?.[1] as string
    t.ok(ip2, 'c2 address')
    for (const h of ['h1', 'h2'])
      t.ok(
        await eventually(
          () =>
            c
              .plexctlJson<{ routes: { programmed: boolean }[] }>(h, ['routes'])
              .routes.some((x) => x.programmed),
          20_000,
        ),
        `${h} has its route to the other`,
      )
    t.equal(
      c.execCtr('c1', ['ping', '-c', '1', '-W', '2', ip2]).status,
      0,
      'c1 reaches c2 (the path is really up)',
    )

    const ok = trace(c, 'h1', ['c1', 'c2:8080'])
    t.ok(ok.diagnosis.ok, `healthy: ${ok.diagnosis.line}`)
    t.ok(
      ok.hops.every((h) => h.action === 'forwarded' || h.action === 'delivered'),
      'every hop forwarded or delivered',
    )
    t.same(
      ok.hops.map((h) => `${h.host} ${h.component}`),
      [
        'h1 container-route',
        'h1 veth',
        'h1 host-route',
        'h1 firewall',
        'h1 vxlan-neighbour',
        'h1 vxlan-fdb',
        'h1 underlay',
        'h2 host-route',
        'h2 firewall',
        'h2 veth',
        'h2 container',
        'h2 socket',
      ],
      'the vxlan path, hop by hop',
    )
    t.equal(ok.hops.at(-1)?.action, 'delivered', 'delivered to the listening socket')
    t.match(ok.hops.at(-1)?.object, /:8080/)
    t.match(
      ok.hops.find((h) => h.component === 'vxlan-fdb')?.record,
      /^leases\//,
      'the FDB entry names the lease that made it',
    )
    t.match(
      ok.hops.find((h) => h.component === 'veth')?.record,
      /^endpoints\//,
      'the veth names its endpoint record',
    )

    const noPort = trace(c, 'h1', ['c1', 'c2:9999'])
    t.equal(broken(noPort)?.component, 'socket', 'nothing listens on 9999: the socket hop says so')

    // latency: the agent's own time for the whole trace (both hosts asked), median of 20
    const times: number[] = []
    for (let i = 0; i < 20; i++)
      times.push((await apiTrace(c, 'h1', { src: 'c1', dst: 'c2', port: 8080 })).durationMs)
    const p50 = median(times)
    t.comment(`2-host trace: median ${p50} ms of 20 (min ${Math.min(...times)}, max ${Math.max(...times)})`)
    t.ok(p50 <= 1000, `median ${p50} ms <= 1 s`)

    const doc = c.plexctlJson<{
      host: string
      findings: { check: string; status: string; evidence: string }[]
    }>('h1', ['doctor', '--host', 'h2'])
    t.equal(doc.host, 'h2', 'doctor --host asks the other agent over the inspect protocol')
    t.equal(doc.findings.find((f) => f.check === 'lease')?.status, 'ok')
    const clock = doc.findings.find((f) => f.check === 'clock-offset')
    t.equal(
      clock?.status,
      'ok',
      'h2 asked h1 for its clock over the inspect protocol: one machine, one clock',
    )
    t.match(clock?.evidence, /the other host within 1000 ms of this one: h1 [+-]\d+ ms/)

    // FDB entry deleted: the reconciler puts it back within its interval, so trace at once and retry if it won
    const h2ip = /dst (\S+)/.exec(
      c.exec('h1', ['bridge', 'fdb', 'show', 'dev', 'plexus.1']).stdout,
    )?.[1] as string
    t.ok(h2ip, 'h1 has an FDB entry for h2')
    let fdbHop: Hop | undefined
    for (let i = 0; i < 3 && fdbHop?.component !== 'vxlan-fdb'; i++) {
      const line = inHost(c, 'h1', ['bridge', 'fdb', 'show', 'dev', 'plexus.1'])
        .stdout.split('\n')
        .find((l) => l.includes(`dst ${h2ip}`))
      const mac = line?.split(' ')[0] as string
      inHost(c, 'h1', ['bridge', 'fdb', 'del', mac, 'dev', 'plexus.1', 'dst', h2ip])
      fdbHop = broken(await apiTrace(c, 'h1', { src: 'c1', dst: 'c2', port: 8080 }))
    }
    t.equal(fdbHop?.component, 'vxlan-fdb', 'FDB deleted: the broken hop is the FDB')
    t.equal(fdbHop?.host, 'h1')
    t.match(fdbHop?.cause, /FDB entry .* missing on h1/)
    t.ok(
      await eventually(() => trace(c, 'h1', ['c1', 'c2:8080']).diagnosis.ok, 10_000, 250),
      'repaired by the datapath: ok again',
    )

    // a foreign DROP ahead of Plexus' chain on the destination host
    const ip1 = /src (\S+)/.exec(c.execCtr('c1', ['ip', 'route', 'get', ip2]).stdout)?.[1] as string
    const rule = ['FORWARD', '-s', ip1, '-j', 'DROP']
    let fwHop: Hop | undefined
    for (let i = 0; i < 3 && fwHop?.component !== 'firewall'; i++) {
      inHost(c, 'h2', ['iptables', '-I', ...rule])
      t.teardown(() => {
        inHost(c, 'h2', ['iptables', '-D', ...rule])
      })
      fwHop = broken(await apiTrace(c, 'h1', { src: 'c1', dst: 'c2', port: 8080 }))
      t.not(
        c.execCtr('c1', ['ping', '-c', '1', '-W', '1', ip2]).status,
        0,
        'and the packet really is dropped',
      )
    }
    t.equal(fwHop?.component, 'firewall', 'foreign DROP: the broken hop is the firewall')
    t.equal(fwHop?.host, 'h2')
    t.match(fwHop?.object, new RegExp(`-s ${ip1.replace(/\./g, '\\.')}/32 -j DROP`))
    while (inHost(c, 'h2', ['iptables', '-D', ...rule]).status === 0) {}

    // the remote agent killed: shown as not answering, within 2 s
    c.stop('h2', 'KILL')
    const t0 = Date.now()
    const dead = trace(c, 'h1', ['c1', 'c2:8080'])
    const wall = Date.now() - t0
    t.equal(broken(dead)?.component, 'agent', 'h2 shown as not answering')
    t.equal(broken(dead)?.action, 'no-answer')
    t.equal(broken(dead)?.host, 'h2')
    t.ok(dead.durationMs <= 2000, `answered in ${dead.durationMs} ms (API wall ${wall} ms)`)
    t.comment(`trace fixture test: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  },
)
