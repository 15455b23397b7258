// The wireguard backend in the test bed: 3 hosts running plexusd over
// wireguard-go, one container each, one cluster for every check (issue 17).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CLUSTER_PORT, clusterDir, ctrNs, hostNs, underlayNs } from '../../../netns-fixtures/lib/state.js'
import { type Cluster, eventually, REPO, run, upCluster } from '../../helpers/fixture.js'

t.setTimeout(300_000)

const HOSTS = ['h1', 'h2', 'h3'] as const
const WG_PORT = 51820
/** WireGuard's handshake retry period (REKEY_TIMEOUT in the protocol's timers) */
const REKEY_TIMEOUT_MS = 5000

interface Routes {
  state: string
  mtu?: number
  subnet?: string
  routes: { dst: string; programmed: boolean }[]
  repairs: Record<string, number>
  passes: number
  wireguard?: {
    pid?: number
    adopted: boolean
    restarts: number
    publicKey?: string
    keyGeneration?: number
    nextPublicKey?: string
    peers: { publicKey: string }[]
  }
}

/**
 * `wg show plexus-wg dump` on a host, its lines split at tabs: first the interface (private key, public key,
 * port), then one line per peer, its public key first. wg looks for the socket in /var/run/wireguard, so
 * bind the host's there.
 */
function wgDump(c: Cluster, host: string): string[][] | undefined {
  const dir = join(clusterDir(c.name), host, 'run', 'wireguard')
  const r = run('ip', [
    ...['netns', 'exec', hostNs(c.name, host), 'unshare', '--mount', 'sh', '-c'],
    'mount --bind "$1" /var/run/wireguard && exec wg show plexus-wg dump',
    ...['wg-show', dir],
  ])
  if (r.status !== 0) return undefined
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
}

/** the public keys of the device's peers on a host */
function wgPeers(c: Cluster, host: string): string[] | undefined {
  return wgDump(c, host)
    ?.slice(1)
    .map((l) => l[0] as string)
}

function wgSet(c: Cluster, host: string, args: string): number {
  const dir = join(clusterDir(c.name), host, 'run', 'wireguard')
  return run('ip', [
    ...['netns', 'exec', hostNs(c.name, host), 'unshare', '--mount', 'sh', '-c'],
    `mount --bind "$1" /var/run/wireguard && exec wg set plexus-wg ${args}`,
    ...['wg-set', dir],
  ]).status
}

/**
 * A process in a namespace, its output collected. With `file`, stdout goes there instead of a pipe: the
 * fixture's start/stop block this event loop, and a long-running writer must not stall on a full pipe.
 */
function spawnIn(
  ns: string,
  cmd: string[],
  file?: string,
): { child: ChildProcess; out: () => string; err: () => string } {
  const fd = file ? openSync(file, 'w') : undefined
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', fd ?? 'pipe', 'pipe'] })
  if (fd !== undefined) closeSync(fd)
  let out = ''
  let err = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  child.stderr?.on('data', (d) => {
    err += d
  })
  return { child, out: () => (file ? readFileSync(file, 'utf8') : out), err: () => err }
}

const exited = (p: ChildProcess) =>
  new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())))

/** lost echo requests: total, and the longest run of consecutive ones (ping's icmp_seq starts at 1) */
function losses(pingOut: string): { sent: number; received: number; longestRun: number } {
  const seqs = [...pingOut.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]))
  const sent = Number(/(\d+) packets transmitted/.exec(pingOut)?.[1] ?? 0)
  const got = new Set(seqs)
  let run = 0
  let longestRun = 0
  for (let s = 1; s <= sent; s++) {
    run = got.has(s) ? 0 : run + 1
    longestRun = Math.max(longestRun, run)
  }
  return { sent, received: got.size, longestRun }
}

t.test('3 hosts over wireguard', async (t) => {
  const t0 = Date.now()
  const c = upCluster(t, { hosts: 2, backend: 'wireguard', prefix: 'wg' })
  // h3 alone holds a short lease, so when it leaves it drops out of everyone's peers within the test;
  // the others keep the default one, so however long h2's restart takes under load, its lease stays
  // (a lease this short needs node records refreshed often: confirmation follows them, src/ipam/README.md)
  const short = {
    network: { leaseTtlMs: 28_000, leaseRenewMs: 2000, leaseClockDriftMs: 1000 },
    cluster: { refreshIntervalMs: 3000 },
  }
  const joined = c.cli(['join', '--name', c.name, '--agent-config', JSON.stringify(short)])
  t.equal(joined.status, 0, `h3 joins: ${joined.stderr}`)
  const phase = (what: string) => t.comment(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  phase('cluster up')
  const pcap = join(tmpdir(), `${c.name}.pcap`)
  t.teardown(() => rmSync(pcap, { force: true }))
  const ips: Record<string, string> = {}
  for (const h of HOSTS) {
    const r = c.run(h, `c${h.slice(1)}`, ['sleep', '600'])
    t.equal(r.status, 0, `container on ${h}: ${r.stderr}`)
    ips[h] = /: (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1] ?? ''
  }
  const routes = (h: string) => c.plexctlJson<Routes>(h, ['routes'])
  /** two echo requests from host a's container to host b's: ping's exit status */
  const icmp = (a: string, b: string) =>
    c.execCtr(`c${a.slice(1)}`, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ips[b] as string]).status
  for (const h of HOSTS) {
    const ok = await eventually(() => {
      const r = routes(h)
      return r.routes.filter((x) => x.programmed).length === 2 && r.wireguard?.peers.length === 2
    }, 20_000)
    t.ok(ok, `${h}: two peers and two routes`)
  }
  const keys = Object.fromEntries(HOSTS.map((h) => [h, routes(h).wireguard?.publicKey ?? '']))
  t.equal(routes('h1').mtu, 1440, 'MTU = underlay 1500 - 60')
  for (const h of HOSTS) {
    const others = HOSTS.filter((x) => x !== h).map((x) => keys[x])
    t.same(wgPeers(c, h)?.sort(), others.sort(), `wg show on ${h}: the other two hosts' keys`)
  }
  const plain = c.exec('h1', ['plexctl', 'routes']).stdout
  t.match(plain, /WireGuard plexus-wg \(wireguard-go, pid \d+, 0 restart\(s\)\), port 51820, key \S+/)
  for (const h of ['h2', 'h3'])
    t.match(plain, keys[h] as string, `plain plexctl routes lists ${h}'s key as a peer`)

  phase('containers, peers and routes')
  // traffic, with the underlay captured: only WireGuard between the hosts, never the payload
  // --immediate-mode: without it the kernel hands tcpdump its packets in blocks every second or so,
  // and the SIGINT below drops the last block unread (all of the traffic, on a quiet machine)
  const capture = spawnIn(underlayNs(c.name), [
    'tcpdump',
    '-i',
    'any',
    '--immediate-mode',
    '-nn',
    '-s',
    '0',
    '-U',
    '-w',
    pcap,
  ])
  t.teardown(() => capture.child.kill('SIGKILL'))
  t.ok(await eventually(() => /listening on/.test(capture.err()), 5000, 20), 'tcpdump listens')
  for (const [a, b] of [
    ['h1', 'h2'],
    ['h2', 'h3'],
    ['h3', 'h1'],
  ] as const)
    t.equal(icmp(a, b), 0, `ICMP c${a.slice(1)} → c${b.slice(1)}`)
  const marker = `PLEXUS-WG-MARKER-${randomBytes(8).toString('hex')}`
  const port = 6000 + Math.floor(Math.random() * 1000)
  const server = spawnIn(ctrNs(c.name, 'c2'), [
    process.execPath,
    '-e',
    `require('net').createServer((s) => { let n = ''; s.on('data', (d) => { n += d }); s.on('end', () => { process.stdout.write(n); process.exit(0) }) }).listen(${port})`,
  ])
  t.teardown(() => server.child.kill('SIGKILL'))
  const sent = marker.repeat(2000)
  const client = await eventually(
    () =>
      c.execCtr('c1', [
        process.execPath,
        '-e',
        `const s = require('net').connect(${port}, '${ips.h2}', () => s.end(${JSON.stringify(sent)})); s.on('error', () => process.exit(1))`,
      ]).status === 0,
    5000,
    100,
  )
  t.ok(client, 'TCP client c1 → c2 sent its payload')
  await Promise.race([exited(server.child), new Promise((r) => setTimeout(r, 5000))])
  t.equal(server.out(), sent, `c2 received the ${sent.length} bytes intact`)
  capture.child.kill('SIGINT')
  await exited(capture.child)
  const raw = readFileSync(pcap)
  t.notOk(raw.includes(marker), 'the payload marker never appears on the underlay')
  const lines = run('tcpdump', ['-nn', '-r', pcap]).stdout.trim().split('\n')
  const hostIp = /192\.0\.2\.1[1-3]\.\d+ > 192\.0\.2\.1[1-3]\.\d+/
  const between = lines.filter((l) => hostIp.test(l))
  const wg = between.filter((l) => new RegExp(`\\.${WG_PORT} > .*\\.${WG_PORT}: UDP`).test(l))
  const cluster = between.filter((l) => new RegExp(`\\.${CLUSTER_PORT}[ :]`).test(l) && / Flags /.test(l))
  t.ok(wg.length >= 12, `WireGuard UDP between hosts (${wg.length} packets)`)
  t.same(
    between.filter((l) => !wg.includes(l) && !cluster.includes(l)),
    [],
    `between hosts only WireGuard and the agents' own cluster protocol (TCP ${CLUSTER_PORT})`,
  )
  t.same(
    lines.filter((l) => /10\.244\./.test(l)),
    [],
    'no container address in the clear on the underlay',
  )

  phase('traffic and capture')
  // drift: a peer removed by hand comes back and is counted
  const repairsBefore = routes('h1').repairs.peer ?? 0
  t.equal(wgSet(c, 'h1', `peer ${keys.h2} remove`), 0, 'wg set … remove on h1')
  // the datapath may put it back before this read (CI saw it): then the repair is already counted
  const gone = !wgPeers(c, 'h1')?.includes(keys.h2 as string)
  t.ok(gone || (routes('h1').repairs.peer ?? 0) > repairsBefore, 'the peer is gone, or already repaired')
  t.ok(
    await eventually(() => wgPeers(c, 'h1')?.includes(keys.h2 as string), 5000, 50),
    'the removed peer is back within 5 s',
  )
  t.ok((routes('h1').repairs.peer ?? 0) > repairsBefore, 'peer repair counted')

  phase('peer repair')
  // SIGKILL + start of h2's agent while c1 pings c2 at 100/s: the device is adopted, the tunnel stays
  const before = routes('h2').wireguard
  const pingLog = join(tmpdir(), `${c.name}.ping`)
  t.teardown(() => rmSync(pingLog, { force: true }))
  const ping = spawnIn(ctrNs(c.name, 'c1'), ['ping', '-i', '0.01', '-W', '1', ips.h2 as string], pingLog)
  t.teardown(() => ping.child.kill('SIGKILL'))
  await new Promise((r) => setTimeout(r, 500))
  const restartStarted = Date.now()
  t.equal(c.stop('h2', 'KILL').status, 0, 'h2 agent SIGKILLed')
  t.equal(c.start('h2').status, 0, 'h2 agent started again')
  t.ok(
    await eventually(() => routes('h2').passes >= 1 && routes('h2').wireguard?.adopted, 10_000),
    'the new agent adopted the device',
  )
  const restartMs = Date.now() - restartStarted
  await new Promise((r) => setTimeout(r, 500))
  ping.child.kill('SIGINT')
  await exited(ping.child)
  const after = routes('h2').wireguard
  t.equal(after?.pid, before?.pid, 'the same wireguard-go process serves the device')
  const l = losses(ping.out())
  t.comment(
    `restart of h2 (${restartMs} ms): ${l.sent} pings at 100/s, ${l.sent - l.received} lost, longest gap ${l.longestRun * 10} ms`,
  )
  t.ok(l.sent > 100, 'pings were sent across the restart')
  // what the kernel did, not wall time: a lost echo is a sequence number that never came back
  t.ok(l.longestRun < 100, `no gap of a second or more (longest: ${l.longestRun} lost in a row)`)

  phase('agent restart')
  // `plexctl network rotate-keys` while c1 pings c2 at 100/s: every host announces its next key, takes it
  // after the settle time (5 s), and the tunnel pauses for no more than the peers' reaction to it
  const rotationLog = join(tmpdir(), `${c.name}.rotation.ping`)
  t.teardown(() => rmSync(rotationLog, { force: true }))
  const rping = spawnIn(ctrNs(c.name, 'c1'), ['ping', '-i', '0.01', '-W', '1', ips.h2 as string], rotationLog)
  t.teardown(() => rping.child.kill('SIGKILL'))
  await new Promise((r) => setTimeout(r, 500))
  const rotateStarted = Date.now()
  const request = c.plexctlJson<{ generation: number }>('h1', ['network', 'rotate-keys'])
  t.ok(request.generation >= 1, `rotation generation ${request.generation} requested`)
  const taken = await eventually(
    () =>
      HOSTS.every((h) => {
        const w = routes(h).wireguard
        return w?.keyGeneration === request.generation && w.nextPublicKey === undefined
      }),
    30_000,
    100,
  )
  t.ok(taken, 'every host took the new generation and has no rotation under way')
  const rotated = Object.fromEntries(HOSTS.map((h) => [h, routes(h).wireguard?.publicKey ?? '']))
  for (const h of HOSTS) {
    t.not(rotated[h], keys[h], `${h} has a new public key`)
    t.equal(wgDump(c, h)?.[0]?.[1], rotated[h], `${h}'s device uses it`)
  }
  const newPeers = (h: string) =>
    HOSTS.filter((x) => x !== h)
      .map((x) => rotated[x])
      .sort()
  const peersNow = (h: string) => JSON.stringify(wgPeers(c, h)?.sort())
  t.ok(
    await eventually(() => HOSTS.every((h) => peersNow(h) === JSON.stringify(newPeers(h))), 10_000, 100),
    'the old peers are gone',
  )
  for (const h of HOSTS)
    t.same(wgPeers(c, h)?.sort(), newPeers(h), `wg show on ${h}: the other two hosts' new keys`)
  const rotateMs = Date.now() - rotateStarted
  await new Promise((r) => setTimeout(r, 1000))
  rping.child.kill('SIGINT')
  await exited(rping.child)
  const r = losses(rping.out())
  t.comment(
    `key rotation (${rotateMs} ms to every host's new key and peers): ${r.sent} pings at 100/s, ${r.sent - r.received} lost, longest gap ${r.longestRun * 10} ms`,
  )
  t.ok(r.sent > 500, 'pings were sent across the rotation')
  // The bound: traffic stops for no more than one handshake, and WireGuard retries an
  // unanswered handshake after REKEY_TIMEOUT. The gap is each peer's reaction to the new key (one gossip
  // and one pass, README): 0-30 ms on a quiet machine, 1.6 s seen under CI's two parallel test files.
  t.ok(
    r.longestRun * 10 < REKEY_TIMEOUT_MS,
    `no gap of one handshake retry (${REKEY_TIMEOUT_MS} ms) or more (longest: ${r.longestRun} lost in a row)`,
  )
  t.equal(icmp('h2', 'h3'), 0, 'after the rotation: ICMP c2 → c3')
  t.equal(icmp('h3', 'h1'), 0, 'after the rotation: ICMP c3 → c1')
  Object.assign(keys, rotated)

  phase('key rotation')
  // a host that leaves: its lease expires and it is removed as a peer everywhere
  t.equal(c.stop('h3').status, 0, 'h3 agent stopped')
  const clean = c.exec('h3', [process.execPath, join(REPO, 'dist/src/agent/main.js'), '--cleanup'])
  t.equal(clean.status, 0, `plexusd --cleanup on h3: ${clean.stdout}${clean.stderr}`)
  t.match(clean.stdout, /stopped processes: wireguard-go \(pid \d+\)/)
  t.notMatch(c.exec('h3', ['ip', 'link']).stdout, /plexus/, 'no plexus device left on h3')
  for (const h of ['h1', 'h2']) {
    const gone = await eventually(
      () => {
        const peers = wgPeers(c, h)
        return peers !== undefined && !peers.includes(keys.h3 as string)
      },
      30_000,
      200,
    )
    t.ok(gone, `h3's key is no longer a peer on ${h}`)
    t.ok(wgPeers(c, h)?.length === 1, `${h} keeps its one other peer`)
  }
  t.equal(icmp('h1', 'h2'), 0, 'c1 → c2 still talks')
})
