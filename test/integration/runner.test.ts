// Jobs run on real agents (2 hosts in the netns test bed): each allocation of
// a group runs a real process in a network namespace of its own that got its
// address from the CNI plugin (plexctl exec sees it there); a SIGKILLed task is restarted per its policy;
// a SIGKILLed agent comes back and adopts its running task (one process, no
// second CNI ADD); a missing binary fails with the reason after its restart
// attempts; job stop leaves nothing (process, netns, veth, cgroup, records).
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DEFAULT_APP_PORT } from '../../src/api/app-listener.js'
import { type Cluster, eventually, run, upCluster } from '../helpers/fixture.js'
import { type Alloc, attaches, hostApi, hostDir, localAlloc, pidsInNetns } from '../helpers/runner.js'
import { allocations, hostVeths } from './cni/plugin.js'

t.setTimeout(900_000)

const SPEC = `name: rt
type: service
groups:
  - name: web
    count: 2
    constraints:
      - operator: distinct_hosts
    restart: { policy: on-failure, attempts: 5, delayMs: 200 }
    tasks:
      - name: web
        driver: exec
        config: { command: ["sh", "-c", "echo up $PLEXUS_ALLOC_ID; exec sleep 600"] }
        resources: { cpu: 100, memoryMb: 32 }
        killTimeoutMs: 2000
  - name: bad
    count: 1
    restart: { policy: on-failure, attempts: 1, delayMs: 100 }
    reschedule: { attempts: 1, delayMs: 500 }
    tasks:
      - name: bad
        driver: exec
        config: { command: ["no-such-binary-plexus"] }
        resources: { cpu: 10, memoryMb: 8 }
`

// version 2 of the web group (the bad group dropped, no distinct_hosts, so a drain can move one):
// rolled out one allocation at a time
const SPEC_V2 = `name: rt
type: service
groups:
  - name: web
    count: 2
    update: { maxParallel: 1, minHealthyMs: 1500 }
    tasks:
      - name: web
        driver: exec
        config: { command: ["sh", "-c", "echo v2 $PLEXUS_ALLOC_ID; exec sleep 600"] }
        resources: { cpu: 100, memoryMb: 32 }
        killTimeoutMs: 2000
  - name: client
    count: 1
    talksTo: [{ service: web }]
    tasks:
      - name: client
        driver: exec
        config: { command: ["sh", "-c", "echo talks to $PLEXUS_TALKSTO_WEB_ADDRS; exec sleep 600"] }
        resources: { cpu: 100, memoryMb: 16 }
`

const allocs = (c: Cluster, h = 'h1') => c.plexctlJson<Alloc[]>(h, ['allocs', '--job', 'rt'])
/**
 * The same list read straight from h1's API socket: a few milliseconds instead of a plexctl process
 * (half a second or more on a busy machine), so the loops that watch a rollout sample it often enough
 * to see each 1.5 s overlap of an old and a new instance.
 */
const allocsNow = (c: Cluster): Promise<Alloc[]> => hostApi<Alloc[]>(c, 'h1', 'GET', '/v1/allocs?job=rt')
const local = (c: Cluster, a: Alloc) => localAlloc(c, a.hostName, a.id)
const pidOf = (c: Cluster, a: Alloc) => local(c, a).tasks[0]?.handle?.pid as number
const nsInode = (path: string) => statSync(path).ino
const cgroupDirs = (id: string) =>
  ['memory', 'cpu', 'pids'].map((c) => `/sys/fs/cgroup/${c}/plexus/${id}`).filter((d) => existsSync(d))

t.test('a job runs, restarts, is adopted and leaves nothing', { timeout: 560_000 }, async (t) => {
  // a restarted agent must not be declared dead meanwhile (its slots would move elsewhere)
  const c = upCluster(t, { hosts: 2, prefix: 'run', agentConfig: { cluster: { deadAfterMs: 60_000 } } })
  const file = join(tmpdir(), `${c.name}-rt.yaml`)
  writeFileSync(file, SPEC)
  t.teardown(() => rmSync(file, { force: true }))
  t.ok(
    await eventually(
      () =>
        c.plexctlJson<{ state: string }[]>('h1', ['hosts']).filter((x) => x.state === 'alive').length === 2,
      30_000,
      500,
    ),
    'both hosts alive',
  )
  const runJob = c.exec('h1', ['plexctl', 'job', 'run', file])
  t.equal(runJob.status, 0, `job run: ${runJob.stderr}`)

  const webs = await eventually(() => {
    const w = allocs(c).filter((a) => a.group === 'web')
    return w.length === 2 && w.every((a) => a.status === 'running' && a.address) ? w : undefined
  }, 150_000)
  t.ok(webs, 'both web allocations running with an address')
  if (!webs) return
  t.same(new Set(webs.map((a) => a.hostName)).size, 2, 'on distinct hosts')
  const seen = new Map<string, { ns: string; pid: number; inode: number }>()
  for (const a of webs) {
    const l = local(c, a)
    const pid = pidOf(c, a)
    const inode = nsInode(`/proc/${pid}/ns/net`)
    t.not(inode, nsInode('/proc/self/ns/net'), `${a.id}: its process is not in the test’s namespace`)
    t.not(
      inode,
      nsInode(
        `/proc/${readFileSync(join(hostDir(c, a.hostName), 'plexusd.pid'), 'utf8').split(/\s+/)[0]}/ns/net`,
      ),
      'nor its host’s',
    )
    const addr = run('nsenter', [
      `--net=/proc/${pid}/ns/net`,
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'eth0',
    ]).stdout
    t.match(
      addr,
      new RegExp(` ${(a.address as string).replace(/\./g, '\\.')}/`),
      `eth0 has ${a.address} from the CNI plugin`,
    )
    t.same(pidsInNetns(inode), [pid], 'exactly one process in its namespace')
    t.equal(attaches(c, a.hostName, a.id), 1, 'one CNI ADD')
    const logs = c.exec(a.hostName, ['plexctl', 'logs', a.id, '--tail', '1'])
    t.equal(logs.stdout, `up ${a.id}\n`, 'its output is in plexctl logs')
    const ip = c.exec(a.hostName, ['plexctl', 'exec', a.id, '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0'])
    t.match(
      ip.stdout,
      new RegExp(` ${(a.address as string).replace(/\./g, '\\.')}/`),
      `plexctl exec runs in the task's network namespace: ${ip.stderr}`,
    )
    const env = c.exec(a.hostName, [
      'plexctl',
      'exec',
      a.id,
      '--',
      'sh',
      '-c',
      'echo $PLEXUS_ALLOC_ID; echo $PLEXUS_HTTP_ADDR; exit 7',
    ])
    // the application API of its host is on the bridge gateway, the task's default route
    const gateway = /default via (\S+)/.exec(
      run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-4', 'route', 'show', 'default']).stdout,
    )?.[1]
    t.same(
      [env.stdout, env.status],
      [`${a.id}\n${gateway}:${DEFAULT_APP_PORT}\n`, 7],
      "with the task's environment (PLEXUS_HTTP_ADDR: its host's application API), exiting with its status",
    )
    seen.set(a.id, { ns: l.netns, pid, inode })
  }

  // a missing binary: the start fails with the reason, is retried once (attempts: 1), then failed
  const bad = await eventually(
    () => allocs(c).find((a) => a.group === 'bad' && a.status === 'failed'),
    30_000,
  )
  t.ok(bad, 'the bad allocation is reported failed')
  t.match(bad?.reason, /no-such-binary-plexus.*not found.*after 1 restart/, `with the reason: ${bad?.reason}`)
  t.equal(bad?.restarts, 1, 'after one restart, as its policy says')
  // its slot is placed again once (reschedule attempts: 1) after the delay, then given up: no retry loop
  const bads = () => allocs(c).filter((a) => a.group === 'bad')
  const twice = await eventually(() => {
    const b = bads()
    return b.length === 2 && b.every((a) => a.status === 'failed') ? b : undefined
  }, 30_000)
  t.ok(twice, `placed again once, failed again: ${JSON.stringify(bads().map((a) => [a.id, a.status]))}`)
  const gaveUp = await eventually(
    () =>
      ['h1', 'h2'].some((h) =>
        readFileSync(join(hostDir(c, h), 'plexusd.log'), 'utf8').includes('failed after 1 reschedule(s)'),
      ),
    10_000,
  )
  t.ok(gaveUp, 'its owner logs that the slot is given up')
  await new Promise((r) => setTimeout(r, 3000))
  t.equal(bads().length, 2, 'and places it no more (3 s later: 6 × the reschedule delay)')

  // SIGKILL the task: restarted per policy, counted
  const [first, second] = webs as [Alloc, Alloc]
  const before = seen.get(first.id) as { ns: string; pid: number; inode: number }
  process.kill(before.pid, 'SIGKILL')
  const restarted = await eventually(() => {
    const a = allocs(c).find((x) => x.id === first.id)
    return a && a.status === 'running' && a.restarts === 1 ? a : undefined
  }, 60_000)
  t.ok(restarted, 'the killed task runs again, 1 restart counted')
  const newPid = pidOf(c, first)
  t.not(newPid, before.pid, 'a new process')
  t.same(pidsInNetns(before.inode), [newPid], 'in the same namespace, alone')
  t.equal(attaches(c, first.hostName, first.id), 1, 'no second CNI ADD for a restart')

  // SIGKILL the agent of the second allocation, start it again: the task was never touched and is adopted
  const other = seen.get(second.id) as { ns: string; pid: number; inode: number }
  t.equal(c.stop(second.hostName, 'KILL').status, 0, `SIGKILL plexusd on ${second.hostName}`)
  t.ok(existsSync(`/proc/${other.pid}`), 'the task outlives its agent')
  t.equal(c.start(second.hostName).status, 0, `plexusd on ${second.hostName} started again`)
  const adopted = await eventually(
    () =>
      readFileSync(join(hostDir(c, second.hostName), 'plexusd.log'), 'utf8')
        .split('\n')
        .some((l) => l.includes('task adopted') && l.includes(second.id)),
    90_000,
  )
  t.ok(adopted, 'the new agent adopted the task')
  // a few passes of the new agent's runner
  await new Promise((r) => setTimeout(r, 3000))
  t.same(pidsInNetns(other.inode), [other.pid], 'the same single process, no second one')
  t.equal(attaches(c, second.hostName, second.id), 1, 'no second CNI ADD')
  t.equal(allocs(c, second.hostName).find((a) => a.id === second.id)?.status, 'running', 'still running')

  // rolling update: each new allocation comes up beside the one it replaces, which serves until the new
  // one has run for minHealthyMs; one at a time; two web instances run throughout
  const before2 = allocs(c).filter((a) => a.group === 'web')
  writeFileSync(file, SPEC_V2)
  t.equal(c.exec('h1', ['plexctl', 'job', 'run', file]).status, 0, 'job run: version 2')
  let fewest = 2
  let most = 0
  const rolled = await eventually(
    async () => {
      const w = (await allocsNow(c)).filter((a) => a.group === 'web')
      const up = w.filter((a) => a.status === 'running').length
      fewest = Math.min(fewest, up)
      most = Math.max(most, w.filter((a) => a.status !== 'complete' && a.status !== 'failed').length)
      return w.length === 2 && w.every((a) => a.jobVersion === 2 && a.status === 'running') ? w : undefined
    },
    120_000,
    100,
  )
  t.ok(rolled, 'both web allocations replaced by version 2, running')
  t.equal(fewest, 2, 'never fewer than two running web instances during the update')
  t.equal(most, 3, 'one replacement at a time (maxParallel 1): at most three instances at once')
  t.same(
    (rolled ?? []).map((a) => a.replaces).sort(),
    before2.map((a) => a.id).sort(),
    'each replaced one version-1 allocation',
  )
  for (const a of rolled ?? []) {
    const logs = c.exec(a.hostName, ['plexctl', 'logs', a.id, '--tail', '1'])
    t.equal(logs.stdout, `v2 ${a.id}\n`, `${a.id} runs version 2`)
  }
  // the client group of version 2 was started with the addresses of the web instances running then
  const client = await eventually(
    () => allocs(c).find((a) => a.group === 'client' && a.status === 'running'),
    30_000,
  )
  t.ok(client, 'the client allocation runs')
  if (client) {
    const line = c.exec(client.hostName, ['plexctl', 'logs', client.id, '--tail', '1']).stdout
    const addrs = /^talks to (\S+)\n$/.exec(line)?.[1]?.split(',') ?? []
    const web = new Set([...before2, ...(rolled ?? [])].map((a) => a.address))
    t.ok(
      addrs.length > 0 && addrs.every((x) => web.has(x)),
      `PLEXUS_TALKSTO_WEB_ADDRS lists web instances: ${line}`,
    )
    // its resolver is its host's Plexus DNS (what /etc/resolv.conf is inside its own mount namespace)
    const resolv = readFileSync(`/proc/${pidOf(c, client)}/root/etc/resolv.conf`, 'utf8')
    t.match(
      resolv,
      /^nameserver 10\.\d+\.\d+\.1\nsearch svc\.plexus\.internal plexus\.internal\n/,
      'resolv.conf',
    )
    t.notMatch(
      readFileSync('/etc/resolv.conf', 'utf8'),
      /svc\.plexus\.internal/,
      "the host's file is untouched",
    )
  }

  // drain the host of a web allocation: what runs there moves to the other host, started before it stops
  const from = rolled?.[0]?.hostName ?? 'h2'
  const to = from === 'h1' ? 'h2' : 'h1'
  const leaving = (rolled ?? []).filter((a) => a.hostName === from).map((a) => a.id)
  t.equal(c.exec(to, ['plexctl', 'hosts', 'drain', from]).status, 0, `plexctl hosts drain ${from}`)
  fewest = 2
  const moved = await eventually(
    async () => {
      const w = (await allocsNow(c)).filter((a) => a.group === 'web')
      fewest = Math.min(fewest, w.filter((a) => a.status === 'running').length)
      return w.length === 2 && w.every((a) => a.hostName === to && a.status === 'running') ? w : undefined
    },
    60_000,
    100,
  )
  t.ok(moved, `both web allocations run on ${to}`)
  t.equal(fewest, 2, 'never fewer than two running during the move')
  t.same(
    (moved ?? []).flatMap((a) => (a.replaces && leaving.includes(a.replaces) ? [a.replaces] : [])).sort(),
    [...leaving].sort(),
    `each allocation that was on ${from} was replaced by a moved one`,
  )
  const drained = () =>
    c.plexctlJson<{ name: string; drained: boolean }[]>('h1', ['hosts']).find((h) => h.name === from)?.drained
  t.equal(drained(), true, `plexctl hosts shows ${from} drained`)
  t.equal(c.exec(from, ['plexctl', 'hosts', 'undrain', from]).status, 0, `plexctl hosts undrain ${from}`)
  t.equal(drained(), false, 'and no longer')
  t.equal(
    c.exec('h1', ['plexctl', 'hosts', 'drain', 'no-such-host']).status,
    1,
    'draining an unknown host is refused',
  )

  // stop: nothing left behind
  const ids = [...before2.map((a) => a.id), ...(rolled ?? []).map((a) => a.id), ...allocs(c).map((a) => a.id)]
  t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'rt']).status, 0, 'job stop')
  const gone = await eventually(
    () =>
      allocs(c, 'h1').length === 0 &&
      allocs(c, 'h2').length === 0 &&
      [...seen.values()].every((s) => !existsSync(`/run/netns/${s.ns}`)) &&
      // an allocation placed again just before the stop may still be attaching: its release follows
      ['h1', 'h2'].every((h) => allocations(c, h).length === 0),
    90_000,
  )
  t.ok(gone, 'every allocation record and namespace gone')
  t.notOk(existsSync(`/proc/${newPid}`), 'the restarted task process ended')
  t.notOk(existsSync(`/proc/${other.pid}`), 'the adopted task process ended')
  for (const id of ids) t.same(cgroupDirs(id), [], `no cgroup left for ${id}`)
  for (const h of ['h1', 'h2']) {
    t.same(hostVeths(c, h), [], `no veth left on ${h}`)
    t.same(allocations(c, h), [], `no address held on ${h}`)
    const dir = join(hostDir(c, h), 'state/runner')
    const left = existsSync(dir) ? readdirNames(dir) : []
    t.same(left, [], `no runner state left on ${h}`)
  }
})

function readdirNames(dir: string): string[] {
  return execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).split('\n').filter(Boolean)
}
