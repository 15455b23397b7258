// What real runtimes put the plugin through beyond the happy path (issues 18
// and 19): go-cni's capitalised payloads, DEL on a malformed config, DEL with
// the agent down, a repeated ADD that disagrees, host namespaces, a read-only
// or full state dir.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import t from 'tap'
import { eventually, run, upCluster } from '../../helpers/fixture.js'
import {
  allocations,
  containerNs,
  firewallText,
  hostNs,
  hostVeths,
  netconf,
  plugin,
  waitReady,
} from './plugin.js'

t.setTimeout(600_000)
const c = upCluster(t, { hosts: 1, prefix: 'ce' })
const H = 'h1'
await waitReady(c, H)
const hostDir = `/run/plexus-fixture/${c.name}/${H}`
const stateDir = `${hostDir}/state`
let seq = 0
const newId = () => `edge-${process.pid}-${seq++}`

interface Result {
  ips: { address: string }[]
  dns: { nameservers?: string[]; search?: string[] }
}
const addressOf = (out: unknown) => ((out as Result).ips[0]?.address ?? '').split('/')[0] as string
const records = () =>
  c.plexctlJson<{ containerId: string; ipv4: string; published?: { hostPort: number }[] }[]>(H, ['endpoints'])
const firewall = () => firewallText(c, H)
/** runs cmd in the agent's own mount namespace (the fixture starts it under `ip netns exec`) */
const inAgentMounts = (cmd: string[]) => {
  // the agent's pid is the first field (the fixture adds its start time and its wrapper's)
  const pid = readFileSync(`${hostDir}/plexusd.pid`, 'utf8').split(/\s+/)[0]
  return run('nsenter', [`--mount=/proc/${pid}/ns/mnt`, ...cmd])
}

t.test('containerd CRI payloads (Go field names) are honoured end to end', async (t) => {
  const id = newId()
  const netns = containerNs(t, `${c.name}-go`)
  const conf = {
    ...netconf(c, H, { cniVersion: '0.4.0', capabilities: { portMappings: true, dns: true } }),
    runtimeConfig: JSON.parse(
      '{"portMappings":[{"HostPort":18082,"ContainerPort":80,"Protocol":"tcp","HostIP":""}],' +
        '"dns":{"Servers":["10.96.0.10"],"Searches":["default.svc.cluster.local"],"Options":["ndots:5"]}}',
    ),
  }
  const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(add.status, 0, add.raw)
  t.same((add.out as unknown as Result).dns.nameservers, ['10.96.0.10'], 'dns Servers honoured')
  const rec = records().find((r) => r.containerId === id)
  t.equal(rec?.published?.[0]?.hostPort, 18082, 'HostPort honoured')
  t.match(firewall(), /18082/, 'the published port has rules')

  // containerd sends DEL after a failed ADD and on StopPodSandbox with the same (here: broken) config
  const broken = { ...conf, runtimeConfig: { portMappings: [{ HostPort: 'x', Protocol: 'sctp' }] } }
  const del = plugin(c, H, { command: 'DEL', containerId: id, netns }, broken)
  t.equal(del.status, 0, `DEL with a malformed portMappings succeeds: ${del.raw}`)
  t.match(del.stderr, /ignored what it could not read/, 'and says what it skipped')
  t.notOk(
    allocations(c, H).some((a) => a.containerId === id),
    'the address is released',
  )
  t.notOk(
    records().some((r) => r.containerId === id),
    'the record is gone',
  )
  t.ok(await eventually(() => !/18082/.test(firewall()), 5000), 'the rules are gone')
  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, 'not json').status, 0, 'DEL on garbage')
})

t.test('a repeated ADD that disagrees is refused; host namespaces are refused', async (t) => {
  const id = newId()
  const netns = containerNs(t, `${c.name}-r1`)
  const other = containerNs(t, `${c.name}-r2`)
  const conf = netconf(c, H)
  const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(add.status, 0, add.raw)
  const address = addressOf(add.out)

  const moved = plugin(c, H, { command: 'ADD', containerId: id, netns: other }, conf)
  t.equal(moved.out?.code, 7, `another netns: ${moved.raw}`)
  t.match(moved.out?.msg, /already attached with namespace/)
  t.equal(run('ip', ['-n', `${c.name}-r2`, 'link', 'show', 'eth0']).status, 1, 'nothing moved there')
  t.equal(run('ip', ['-n', `${c.name}-r1`, 'link', 'show', 'eth0']).status, 0, 'the attachment stays')

  const last = Number(address.split('.')[3])
  const otherIp = address.replace(/\.\d+$/, `.${last === 250 ? 249 : last + 1}`)
  const ip = plugin(
    c,
    H,
    { command: 'ADD', containerId: id, netns, args: `IgnoreUnknown=1;IP=${otherIp}` },
    conf,
  )
  t.equal(ip.out?.code, 7, `another address: ${ip.raw}`)
  t.match(ip.out?.msg, new RegExp(`address ${address.replace(/\./g, '\\.')}, not ${otherIp}`))
  const mac = plugin(
    c,
    H,
    { command: 'ADD', containerId: id, netns, args: 'IgnoreUnknown=1;MAC=02:aa:bb:cc:dd:ee' },
    conf,
  )
  t.equal(mac.out?.code, 7, `another MAC: ${mac.raw}`)
  t.match(mac.out?.msg, /MAC .*, not 02:aa:bb:cc:dd:ee/)
  const same = plugin(
    c,
    H,
    { command: 'ADD', containerId: id, netns, args: `IgnoreUnknown=1;IP=${address}` },
    conf,
  )
  t.equal(same.status, 0, 'the same ADD again is fine')
  t.equal(addressOf(same.out), address)

  const before = { veths: hostVeths(c, H).length, allocs: allocations(c, H).length }
  // init's namespace is unreadable where CAP_SYS_PTRACE is dropped (this test bed's VM): then only the agent's own
  const initReadable = run('stat', ['-L', '/proc/1/ns/net']).status === 0
  if (!initReadable) t.comment("/proc/1/ns/net is not readable here: only the agent's own namespace is tried")
  for (const hostNetns of [...(initReadable ? ['/proc/1/ns/net'] : []), `/run/netns/${hostNs(c, H)}`]) {
    const r = plugin(c, H, { command: 'ADD', containerId: newId(), netns: hostNetns }, conf)
    t.equal(r.out?.code, 4, `${hostNetns} refused: ${r.raw}`)
    t.match(r.out?.msg, /host network namespace/)
  }
  t.same({ veths: hostVeths(c, H).length, allocs: allocations(c, H).length }, before, 'nothing made for them')
  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
})

t.test('DEL with the agent stopped succeeds; the agent finishes it when it starts', async (t) => {
  const id = newId()
  const nsName = `${c.name}-dn`
  const netns = containerNs(t, nsName)
  const conf = { ...netconf(c, H), runtimeConfig: { portMappings: [{ hostPort: 18093, containerPort: 80 }] } }
  const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(add.status, 0, add.raw)
  const address = addressOf(add.out)
  t.match(firewall(), /18093/, 'the published port has rules')

  t.equal(c.stop(H).status, 0, 'agent stopped')
  let started = false
  t.teardown(() => {
    if (!started) c.start(H)
  })
  const del = plugin(c, H, { command: 'DEL', containerId: id, netns }, { ...conf, prevResult: add.out })
  t.equal(del.status, 0, `DEL without the agent: ${del.raw}${del.stderr}`)
  t.match(del.stderr, new RegExp(`removed eth0 from ${netns}`))
  t.equal(run('ip', ['-n', nsName, 'link', 'show', 'eth0']).status, 1, 'the interface left the container')
  t.equal(readdirSync(`${hostDir}/run/cni-spool`).length, 1, 'one spooled DEL')
  t.equal(
    plugin(c, H, { command: 'DEL', containerId: id, netns: '' }, conf).status,
    0,
    'repeated, empty netns',
  )

  t.equal(c.start(H).status, 0, 'agent started')
  started = true
  await waitReady(c, H)
  t.same(readdirSync(`${hostDir}/run/cni-spool`), [], 'spool drained')
  t.notOk(
    allocations(c, H).some((a) => a.containerId === id),
    'address released',
  )
  t.notOk(
    records().some((r) => r.containerId === id),
    'record gone',
  )
  t.ok(await eventually(() => !/18093/.test(firewall()), 5000), 'rules gone')
  t.same(hostVeths(c, H), [], 'no veth left')

  const next = newId()
  const again = plugin(
    c,
    H,
    { command: 'ADD', containerId: next, netns, args: `IgnoreUnknown=1;IP=${address}` },
    netconf(c, H),
  )
  t.equal(again.status, 0, `a new ADD takes ${address}: ${again.raw}`)
  t.equal(addressOf(again.out), address)
  const log = readFileSync(`${hostDir}/plexusd.log`, 'utf8')
  t.equal(log.split('finished a DEL taken while the agent was down').length - 1, 1, 'released once')
  t.equal(plugin(c, H, { command: 'DEL', containerId: next, netns }, netconf(c, H)).status, 0)
})

/** mounts something over the state dir in the agent's mount namespace; the returned function (also run in teardown) undoes it */
function overStateDir(t: { teardown(fn: () => unknown): void }, mount: string[]): () => void {
  const r = inAgentMounts(['mount', ...mount, stateDir])
  if (r.status !== 0) throw new Error(`mount ${mount.join(' ')}: ${r.stderr}`)
  let mounted = true
  const unmount = () => {
    if (mounted) inAgentMounts(['umount', stateDir])
    mounted = false
  }
  t.teardown(unmount)
  return unmount
}

/** every file under dir (in the agent's mount namespace) whose name ends in .tmp */
const tempFiles = (dir: string) =>
  inAgentMounts(['find', dir, '-name', '*.tmp']).stdout.split('\n').filter(Boolean)

t.test('a read-only state dir: code 5 naming the path, nothing left behind, fine again after', async (t) => {
  const netns = containerNs(t, `${c.name}-ro`)
  const conf = netconf(c, H)
  const before = { veths: hostVeths(c, H), allocs: allocations(c, H) }
  const unmount = overStateDir(t, ['--bind', stateDir])
  t.equal(inAgentMounts(['mount', '-o', 'remount,bind,ro', stateDir]).status, 0, 'remounted read-only')
  for (let i = 0; i < 5; i++) {
    const r = plugin(c, H, { command: 'ADD', containerId: newId(), netns }, conf)
    t.equal(r.out?.code, 5, `I/O failure: ${r.raw}`)
    t.match(r.out?.msg, new RegExp(`cannot write ${stateDir}/\\S+: EROFS`))
  }
  t.same(tempFiles(stateDir), [], 'no temp file')
  t.same({ veths: hostVeths(c, H), allocs: allocations(c, H) }, before, 'no veth or address kept')
  unmount()
  const id = newId()
  const ok = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(ok.status, 0, `works again: ${ok.raw}`)
  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
})

t.test('a full state dir: code 5 (ENOSPC), no temp files, fine once space is back', async (t) => {
  const netns = containerNs(t, `${c.name}-full`)
  const conf = netconf(c, H)
  const copy = mkdtempSync('/tmp/plexus-state-')
  t.teardown(() => rmSync(copy, { recursive: true, force: true }))
  // a small tmpfs over the state dir, holding what it held
  t.equal(inAgentMounts(['cp', '-a', `${stateDir}/.`, copy]).status, 0)
  const unmount = overStateDir(t, ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs'])
  t.equal(inAgentMounts(['cp', '-a', `${copy}/.`, stateDir]).status, 0)
  inAgentMounts(['dd', 'if=/dev/zero', `of=${stateDir}/filler`, 'bs=64k'])
  for (let i = 0; i < 5; i++) {
    const r = plugin(c, H, { command: 'ADD', containerId: newId(), netns }, conf)
    t.equal(r.out?.code, 5, `I/O failure: ${r.raw}`)
    t.match(r.out?.msg, new RegExp(`cannot write ${stateDir}/\\S+: ENOSPC`))
  }
  t.same(tempFiles(stateDir), [], 'no temp file')
  inAgentMounts(['rm', `${stateDir}/filler`])
  const id = newId()
  const ok = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
  t.equal(ok.status, 0, `works again: ${ok.raw}`)
  t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0)
  t.same(tempFiles(stateDir), [], 'still no temp file')
  // what the agent wrote meanwhile, back on the real state dir before the tmpfs goes
  t.equal(inAgentMounts(['cp', '-a', `${stateDir}/.`, copy]).status, 0)
  unmount()
  t.equal(inAgentMounts(['cp', '-a', `${copy}/.`, stateDir]).status, 0)
  t.ok(await eventually(() => allocations(c, H).length === 0, 5000), 'allocations consistent')
})
