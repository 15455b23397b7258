// A job with podman tasks on a real agent (the netns test bed, podman with
// private storage, offline: an image imported from busybox-static and a rootfs
// directory). One allocation runs an image task and a rootfs task in the
// group's network namespace (like a pod) with the allocation's address from
// the CNI plugin; its service answers in DNS; `plexctl logs` and `plexctl exec`
// reach the container; a `kill -9` of a task's process restarts it per policy
// in the same namespace; a SIGKILLed agent comes back and adopts the
// containers (no second container, no second CNI ADD); an image that is not
// there fails its allocation with the reason; `job stop` leaves no container,
// namespace, address, veth or runner state.
import { spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { loadCluster } from '../../../netns-fixtures/lib/state.js'
import { type Cluster, eventually, run, upCluster } from '../../helpers/fixture.js'
import { busyboxRootfs, importImage, podmanOnCni } from '../../helpers/podman.js'
import { type Alloc, attaches, hostDir, localAlloc, pidsInNetns } from '../../helpers/runner.js'
import { allocations, hostVeths, PLUGIN } from '../cni/plugin.js'

t.setTimeout(600_000)

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const missing = ['podman', 'runc', 'conmon', 'busybox', 'nsenter', 'multilog', 'dig'].filter((c) => !has(c))

const spec = (rootfs: string) => `name: pm
type: service
groups:
  - name: web
    count: 1
    service: { name: pmweb }
    ports: [{ hostPort: 18091, containerPort: 8080, protocol: tcp }]
    links: ["pmdb:database"]
    restart: { policy: on-failure, attempts: 5, delayMs: 200 }
    tasks:
      - name: web
        driver: podman
        config: { image: localhost/plexus-pm, command: ["sh", "-c", "echo up $PLEXUS_ALLOC_ID; exec httpd -f -p 8080 -h /www"] }
        resources: { cpu: 100, memoryMb: 32 }
        killTimeoutMs: 1000
      - name: side
        driver: podman
        config: { rootfs: "${rootfs}", command: ["sleep", "600"] }
        resources: { cpu: 50, memoryMb: 16 }
        killTimeoutMs: 1000
      - name: probe
        driver: exec
        config: { command: ["sleep", "600"] }
        resources: { cpu: 100, memoryMb: 16 }
        killTimeoutMs: 1000
  - name: bad
    count: 1
    restart: { policy: on-failure, attempts: 1, delayMs: 100 }
    reschedule: { attempts: 0 }
    tasks:
      - name: bad
        driver: podman
        config: { image: localhost/no-such-image-plexus }
        resources: { cpu: 10, memoryMb: 8 }
`

const local = (c: Cluster, id: string) => localAlloc(c, 'h1', id)
const pidOf = (c: Cluster, id: string, task: string) =>
  local(c, id).tasks.find((x) => x.name === task)?.handle?.pid as number
const nsInode = (path: string) => statSync(path).ino

t.test(
  'podman tasks run in the group namespace, restart, are adopted and leave nothing',
  { skip: missing.length ? `not installed: ${missing.join(', ')}` : false },
  async (t) => {
    const dir = mkdtempSync('/tmp/plexus-runner-podman-')
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const storage = { root: join(dir, 'proot'), runroot: join(dir, 'prun') }
    const c = upCluster(t, {
      hosts: 1,
      prefix: 'rpm',
      // a restarted agent must not be declared dead meanwhile
      agentConfig: { cluster: { deadAfterMs: 60_000 }, runner: { podman: storage } },
    })
    // the test's podman on the same storage: imports the image, lists what is left, removes it all at the end
    mkdirSync(join(dir, 'net'))
    const podman = podmanOnCni(t, {
      dir,
      netns: `/run/netns/${c.name}-h1`,
      pluginDir: dirname(PLUGIN),
      networkDir: join(dir, 'net'),
    })
    const rootfs = busyboxRootfs(dir, ['sh', 'sleep', 'cat', 'echo', 'httpd']) as string
    mkdirSync(join(rootfs, 'www'))
    writeFileSync(join(rootfs, 'www/index.html'), 'served by a podman task\n')
    t.equal(importImage(podman, dir, rootfs, 'localhost/plexus-pm'), 0, 'image imported')
    const containers = () =>
      podman(['ps', '-a', '--format', '{{.Names}}']).stdout.split('\n').filter(Boolean).sort()

    const file = join(tmpdir(), `${c.name}-pm.yaml`)
    writeFileSync(file, spec(rootfs))
    t.teardown(() => rmSync(file, { force: true }))
    t.ok(await eventually(() => c.exec('h1', ['plexctl', 'hosts']).status === 0, 30_000, 500), 'agent up')
    // the group's link target: a container of the test bed
    t.equal(c.run('h1', 'pmdb', ['sleep', '600']).status, 0, 'the link target pmdb runs')
    const dbIp = /inet (\S+)\//.exec(
      c.execCtr('pmdb', ['ip', '-4', '-o', 'addr', 'show', 'eth0']).stdout,
    )?.[1]
    const runJob = c.exec('h1', ['plexctl', 'job', 'run', file])
    t.equal(runJob.status, 0, `job run: ${runJob.stderr}`)
    const allocs = () => c.plexctlJson<Alloc[]>('h1', ['allocs', '--job', 'pm'])

    const web = await eventually(
      () => allocs().find((a) => a.group === 'web' && a.status === 'running' && a.address),
      120_000,
      500,
    )
    t.ok(web, 'the web allocation runs with an address')
    if (!web) {
      t.comment(JSON.stringify(allocs(), null, 1))
      t.comment(
        readFileSync(join(hostDir(c, 'h1'), 'plexusd.log'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('runner'))
          .slice(-20)
          .join('\n'),
      )
      return
    }
    const address = web.address as string
    const webPid = pidOf(c, web.id, 'web')
    const sidePid = pidOf(c, web.id, 'side')
    const probePid = pidOf(c, web.id, 'probe')
    const byPid = (...pids: number[]) => pids.sort((a, b) => a - b)
    const inode = nsInode(`/proc/${webPid}/ns/net`)
    t.equal(nsInode(`/proc/${sidePid}/ns/net`), inode, 'both tasks in one namespace, like a pod')
    t.not(inode, nsInode('/proc/self/ns/net'), 'not the test’s namespace')
    t.same(
      pidsInNetns(inode),
      byPid(webPid, sidePid, probePid),
      'exactly the three task processes in it (two containers and an exec task)',
    )
    const addr = run('nsenter', [`--net=/proc/${webPid}/ns/net`, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])
    t.match(addr.stdout, new RegExp(` ${address.replace(/\./g, '\\.')}/`), `eth0 has ${address}`)
    t.same(
      containers(),
      [`plx-${web.id}-side`, `plx-${web.id}-web`].sort(),
      'one container per task (the bad image made none)',
    )
    t.equal(attaches(c, 'h1', web.id), 1, 'one CNI ADD')
    const memcg = /^\d+:memory:(.*)$/m.exec(readFileSync(`/proc/${webPid}/cgroup`, 'utf8'))?.[1]
    t.equal(
      readFileSync(`/sys/fs/cgroup/memory${memcg}/memory.limit_in_bytes`, 'utf8').trim(),
      String(32 * 2 ** 20),
      `its memory limit (cgroup ${memcg})`,
    )
    const netns = local(c, web.id).netns
    const resolv = readFileSync(`/proc/${webPid}/root/etc/resolv.conf`, 'utf8')
    t.match(
      resolv,
      /^nameserver 10\.\d+\.\d+\.1\nsearch svc\.plexus\.internal plexus\.internal\n/,
      "the container's resolv.conf is the allocation's (the host's Plexus DNS)",
    )

    // DNS answers the group's service with the allocation's address
    const server = /^nameserver (\S+)/.exec(resolv)?.[1] ?? ''
    const dig = (name: string) =>
      c.exec('h1', ['dig', '+short', '+time=2', '+tries=1', `@${server}`, name]).stdout
    t.ok(
      await eventually(() => dig('pmweb.svc.plexus.internal').trim() === address, 30_000, 500),
      `pmweb.svc.plexus.internal answers ${address}`,
    )

    // links: Docker's variables and a hosts entry for pmdb as "database", in a container and an exec task
    const line = `${dbIp}\tdatabase pmdb`
    /** plexctl exec of a shell script in the web container */
    const inWeb = (script: string) =>
      c.exec('h1', ['plexctl', 'exec', web.id, '--task', 'web', '--', 'sh', '-c', script])
    const seen = inWeb('echo $DATABASE_NAME; cat /etc/hosts').stdout
    t.match(seen, new RegExp(`^/${web.id}/database\\n`), 'DATABASE_NAME in the container')
    t.ok(seen.includes(`${line}\n`), `its /etc/hosts has ${line}`)
    t.ok(
      readFileSync(`/proc/${probePid}/root/etc/hosts`, 'utf8').includes(`${line}\n`),
      'so has the exec task’s',
    )
    t.ok(
      readFileSync(`/proc/${probePid}/environ`, 'utf8')
        .split('\0')
        .includes(`DATABASE_NAME=/${web.id}/database`),
      'and its environment',
    )

    // the group's published port behaves like -p: h1's address, port 18091, reaches the container's 8080
    const h1 = loadCluster(c.name)?.hosts.find((h) => h.name === 'h1')?.ip
    const page = c.exec('h1', [
      'node',
      '-e',
      `fetch('http://${h1}:18091/index.html').then((r) => r.text()).then((b) => process.stdout.write(b))`,
    ])
    t.equal(
      page.stdout,
      'served by a podman task\n',
      `published: ${h1}:18091 → ${address}:8080 ${page.stderr}`,
    )

    // logs and exec reach the container
    t.equal(
      c.exec('h1', ['plexctl', 'logs', web.id, 'web', '--tail', '1']).stdout,
      `up ${web.id}\n`,
      'its output is in plexctl logs',
    )
    const ex = inWeb('echo $PLEXUS_ALLOC_ID; cat /proc/net/fib_trie; exit 7')
    t.equal(ex.status, 7, `plexctl exec exits with the command's status: ${ex.stderr}`)
    t.match(ex.stdout, new RegExp(`^${web.id}\\n`), "with the task's environment")
    t.ok(ex.stdout.includes(` ${address}\n`), `in its namespace (${address} is local there)`)

    // an image that is not there: failed with the reason after its one restart
    const bad = await eventually(
      () => allocs().find((a) => a.group === 'bad' && a.status === 'failed'),
      30_000,
      500,
    )
    t.match(
      bad?.reason,
      /no-such-image-plexus.*not in podman's local storage.*after 1 restart/,
      `${bad?.reason}`,
    )

    // kill -9 the image task's process: restarted per policy, a new container of the same name
    process.kill(webPid, 'SIGKILL')
    const restarted = await eventually(() => {
      const a = allocs().find((x) => x.id === web.id)
      return a?.status === 'running' && a.restarts === 1 ? a : undefined
    }, 60_000)
    t.ok(restarted, 'the killed task runs again, 1 restart counted')
    const newPid = pidOf(c, web.id, 'web')
    t.not(newPid, webPid, 'a new process')
    t.same(pidsInNetns(inode), byPid(newPid, sidePid, probePid), 'in the same namespace, beside side')
    t.same(containers(), [`plx-${web.id}-side`, `plx-${web.id}-web`].sort(), 'still one container per task')
    t.equal(attaches(c, 'h1', web.id), 1, 'no second CNI ADD for a restart')

    // SIGKILL the agent and start it again: the containers are adopted, not doubled
    t.equal(c.stop('h1', 'KILL').status, 0, 'SIGKILL plexusd')
    t.ok(existsSync(`/proc/${newPid}`), 'the task outlives its agent')
    t.equal(c.start('h1').status, 0, 'plexusd started again')
    const adopted = await eventually(
      () =>
        readFileSync(join(hostDir(c, 'h1'), 'plexusd.log'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('task adopted') && l.includes(web.id)).length === 3,
      90_000,
      500,
    )
    t.ok(adopted, 'the new agent adopted the three tasks')
    await new Promise((r) => setTimeout(r, 3000))
    t.same(pidsInNetns(inode), byPid(newPid, sidePid, probePid), 'the same processes, no second one')
    t.same(containers(), [`plx-${web.id}-side`, `plx-${web.id}-web`].sort(), 'no second container')
    t.equal(attaches(c, 'h1', web.id), 1, 'no second CNI ADD')
    t.equal(allocs().find((a) => a.id === web.id)?.status, 'running', 'still running')

    // stop: nothing left (the link target goes first: it holds an address and a veth of its own)
    t.equal(c.rm('pmdb').status, 0, 'the link target removed')
    t.equal(c.exec('h1', ['plexctl', 'job', 'stop', 'pm']).status, 0, 'job stop')
    const gone = await eventually(
      () => allocs().length === 0 && containers().length === 0 && allocations(c, 'h1').length === 0,
      60_000,
      500,
    )
    t.ok(gone, 'no allocation record, container or address left')
    t.notOk(existsSync(`/proc/${newPid}`), 'the task process ended')
    t.notOk(existsSync(`/proc/${sidePid}`), 'the side task process ended')
    t.notOk(existsSync(`/proc/${probePid}`), 'the exec task process ended')
    t.same(c.plexctlJson('h1', ['link', 'ls']), [], 'its links are gone')
    t.notMatch(c.exec('h1', ['iptables-save']).stdout, /plexus:ports\//, 'and its published port')
    t.same(pidsInNetns(inode), [], 'nothing in the namespace')
    t.same(hostVeths(c, 'h1'), [], 'no veth left')
    const state = join(hostDir(c, 'h1'), 'state/runner')
    t.same(existsSync(state) ? readdirSync(state) : [], [], 'no runner state left')
    t.notOk(existsSync(`/run/netns/${netns}`), `the namespace ${netns} is gone`)
  },
)
