// A runtime in another mount namespace than the agent (containerd inside a
// container, as kind and k3s-in-docker run it): a harness process plays the
// runtime from a private mount namespace with its own /run/netns, so the
// agent cannot open CNI_NETNS by path. It drives the plugin with the conflist
// as shipped (only the socket pointed at the fixture's agent) and a published
// port, through ADD, DEL, DEL with empty CNI_NETNS, 200 times in 4 concurrent
// lanes (a runtime starts containers at once); no ADD may answer with an
// address another lane holds, and nothing may leak: no address, veth, rule or
// record.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { REPO, run, upCluster } from '../../helpers/fixture.js'
import { allocations, firewallText, hostNs, hostVeths, PLUGIN, socketOf, waitReady } from './plugin.js'

// CYCLES shortens a run by hand (the judged number is 200), LANES sets the concurrency
const CYCLES = Number(process.env.CYCLES ?? 200)
const LANES = Number(process.env.LANES ?? 4)
// lane n publishes PORT + n
const PORT = 18080
t.setTimeout(1_800_000)
const c = upCluster(t, { hosts: 1, prefix: 'cm' })
const H = 'h1'
await waitReady(c, H)
const dir = mkdtempSync('/tmp/plexus-mountns-')
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// what libcni hands a plugin from a conflist: the plugin entry plus the list's name and cniVersion
const shipped = JSON.parse(readFileSync(join(REPO, 'cni/10-plexus.conflist'), 'utf8'))
const conf = {
  cniVersion: shipped.cniVersion,
  name: shipped.name,
  ...shipped.plugins[0],
  socket: socketOf(c, H),
  // the port's DNAT and hairpin rules must come with each ADD and go with each DEL
  runtimeConfig: { portMappings: [{ hostPort: PORT, containerPort: 80, protocol: 'tcp' }] },
}

const harness = `
import { execFileSync, spawn } from 'node:child_process'
const [plugin, confJson, cycles, lanes, nsName, port] = process.argv.slice(2)
const conf = JSON.parse(confJson)
// this process's own /run/netns: nothing made here is visible to the agent
execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', '/run/netns'])
const call = (command, id, nsPath, stdin) =>
  new Promise((resolve) => {
    const p = spawn(plugin, [], {
      env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: nsPath,
        CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'IgnoreUnknown=1' },
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { err += d })
    p.on('close', (status) => resolve({ status, out, err }))
    p.stdin.end(JSON.stringify(stdin))
  })
const failures = []
let seen = ''
// this process shares the host's network namespace: its firewall is readable here
const portRules = (p) =>
  (execFileSync('iptables-save', { encoding: 'utf8' }) + execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }))
    .split('\\n').filter((l) => l.includes(p)).length
const published = []
// the address each lane's container holds now: an ADD must never answer with one of them
const held = new Map()
// a runtime runs ADDs and DELs of different containers at once: the cycles run in lanes, each with
// its own namespace and published port, the lanes concurrently
const lane = async (n, count) => {
  const ns = nsName + '-' + n
  const netns = '/run/netns/' + ns
  const lanePort = String(Number(port) + n)
  const laneConf = { ...conf, runtimeConfig: { portMappings: [{ ...conf.runtimeConfig.portMappings[0], hostPort: Number(lanePort) }] } }
  execFileSync('ip', ['netns', 'add', ns])
  published[n] = 0
  for (let i = 0; i < count; i++) {
    const id = 'mnt-' + process.pid + '-' + n + '-' + i
    const add = await call('ADD', id, netns, laneConf)
    if (i % 20 === 0) process.stderr.write('lane ' + n + ' cycle ' + i + '\\n')
    if (add.status !== 0) { failures.push({ n, i, step: 'ADD', ...add }); continue }
    const address = JSON.parse(add.out).ips[0].address.split('/')[0]
    for (const [other, a] of held) if (a === address) failures.push({ n, i, step: 'ADD', twice: address, other })
    held.set(n, address)
    if (i === 0) {
      if (n === 0) seen = execFileSync('ip', ['-n', ns, '-o', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })
      // the datapath applies the port's rules right after ADD answers: give it 5 s
      for (const until = Date.now() + 5000; published[n] === 0 && Date.now() < until; ) {
        published[n] = portRules(lanePort)
        if (published[n] === 0) await new Promise((r) => setTimeout(r, 100))
      }
    }
    held.delete(n)
    // as containerd does: DEL with the namespace, then (task gone) with an empty CNI_NETNS
    const prev = { ...laneConf, prevResult: JSON.parse(add.out) }
    const del = await call('DEL', id, i % 2 ? netns : '', prev)
    if (del.status !== 0) failures.push({ n, i, step: 'DEL', ...del })
    const again = await call('DEL', id, '', prev)
    if (again.status !== 0) failures.push({ n, i, step: 'DEL again', ...again })
  }
  const left = execFileSync('ip', ['-n', ns, '-o', 'link'], { encoding: 'utf8' })
  execFileSync('ip', ['netns', 'delete', ns])
  return left
}
const L = Number(lanes)
const counts = Array.from({ length: L }, (_, n) => Math.floor(Number(cycles) / L) + (n < Number(cycles) % L ? 1 : 0))
const left = (await Promise.all(counts.map((count, n) => lane(n, count)))).join('')
process.stdout.write(JSON.stringify({ failures: failures.slice(0, 5), failed: failures.length, seen, left, published }))
`
writeFileSync(join(dir, 'harness.mjs'), harness)

const rules = () => firewallText(c, H)

t.test(
  `ADD/DEL from another mount namespace, ${CYCLES} cycles in ${LANES} lanes, shipped conflist, nothing leaks`,
  async (t) => {
    // lives only in the harness's mount namespace: it goes when the harness exits, whatever happens
    const ctrNs = `${c.name}-mnt`
    const pid = readFileSync(`/run/plexus-fixture/${c.name}/${H}/plexusd.pid`, 'utf8').split(/\s+/)[0]
    const before = { rules: rules(), veths: hostVeths(c, H), allocs: allocations(c, H) }
    // spawnSync directly: the fixture's run() stops a command after 2 minutes, and 200 cycles take longer
    const h = spawnSync(
      'nsenter',
      [
        `--net=/run/netns/${hostNs(c, H)}`,
        ...['unshare', '--mount', '--propagation', 'private'],
        ...[
          'node',
          join(dir, 'harness.mjs'),
          PLUGIN,
          JSON.stringify(conf),
          String(CYCLES),
          String(LANES),
          ctrNs,
          String(PORT),
        ],
      ],
      { encoding: 'utf8', timeout: 1_500_000 },
    )
    const r = { status: h.status ?? -1, stdout: h.stdout ?? '', stderr: h.stderr ?? '' }
    t.equal(r.status, 0, `harness ran: ${r.stderr}`)
    const out = JSON.parse(r.stdout) as {
      failed: number
      failures: unknown[]
      seen: string
      left: string
      published: number[]
    }
    t.equal(out.failed, 0, `every ADD and DEL succeeded: ${JSON.stringify(out.failures)}`)
    t.match(
      out.seen,
      /eth0\s+inet 10\.244\./,
      'the container got its address in the namespace the runtime named',
    )
    t.equal(out.published.length, LANES, 'every lane ran')
    t.ok(
      out.published.every((n) => n > 0),
      `each lane's published port had rules while attached (${out.published})`,
    )
    t.notMatch(out.left, /eth0/, 'no interface left in the container')
    t.equal(
      run('nsenter', [`--mount=/proc/${pid}/ns/mnt`, 'test', '-e', `/run/netns/${ctrNs}-0`]).status,
      1,
      'the agent could not have opened CNI_NETNS by its path',
    )
    t.same(hostVeths(c, H), before.veths, 'no veth left')
    t.same(allocations(c, H), before.allocs, 'no address left')
    t.same(c.plexctlJson<unknown[]>(H, ['endpoints']), [], 'no endpoint record left')
    t.equal(rules(), before.rules, 'firewall as before')
    for (let n = 0; n < LANES; n++) t.notMatch(rules(), String(PORT + n), `no rule of port ${PORT + n} left`)
  },
)
