// The exec driver's pure parts: where cgroups are, the limits it writes, users, the exec chain,
// the argv that enters a running task.
import t from 'tap'
import type { TaskLaunch } from '../../../src/runner/driver.js'
import { limitFiles, parseCgroupMounts } from '../../../src/runner/exec/cgroups.js'
import { enterArgv } from '../../../src/runner/exec/enter.js'
import { parseUser, taskArgv } from '../../../src/runner/exec/launch.js'

const V1 = `cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0`

t.test('cgroup layout from /proc/self/mounts', async (t) => {
  t.same(parseCgroupMounts(V1), {
    version: 1,
    mounts: { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
  })
  t.same(parseCgroupMounts('cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n'), {
    version: 2,
    mounts: { unified: '/sys/fs/cgroup' },
  })
  t.same(
    parseCgroupMounts(
      'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0',
    ),
    { version: 1, mounts: { cpu: '/sys/fs/cgroup/cpu,cpuacct' } },
    'hybrid: the v1 controllers win over an empty unified mount',
  )
})

t.test('limits: millicores to a CFS quota per 100 ms, MiB to bytes, pids', async (t) => {
  const v1 = limitFiles(1, { cpu: 250, memoryMb: 64, pids: 100 })
  t.equal(v1['cpu/cpu.cfs_quota_us'], '25000', '250 m = 25 ms per 100 ms')
  t.equal(v1['cpu/cpu.cfs_period_us'], '100000')
  t.equal(v1['cpu/cpu.shares'], '256')
  t.equal(v1['memory/memory.limit_in_bytes'], String(64 * 1024 * 1024))
  t.equal(v1['pids/pids.max'], '100')
  const v2 = limitFiles(2, { cpu: 1500, memoryMb: 1, pids: 7 })
  t.same(v2, {
    'unified/memory.max': '1048576',
    'unified/memory.swap.max': '0',
    'unified/cpu.max': '150000 100000',
    'unified/pids.max': '7',
  })
})

t.test('users: numeric, uid:gid, or a passwd name; unknown is an error', async (t) => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n'
  t.same(parseUser('1000', passwd), { uid: 1000, gid: 1000 })
  t.same(parseUser('1000:50', passwd), { uid: 1000, gid: 50 })
  t.same(parseUser('nobody', passwd), { uid: 65534, gid: 65534 })
  t.throws(() => parseUser('ghost', passwd), { code: 'PLX_RUNNER_BAD_USER' })
})

t.test(
  'the exec chain: only the task env, own mount namespace, the netns, rootfs and ids, then the command',
  async (t) => {
    const l: TaskLaunch = {
      allocId: 'a',
      task: 'web',
      command: ['server', '--port', '80'],
      env: { PATH: '/bin', A: 'b c' },
      rootfs: '/srv/root',
      resources: { cpu: 1, memoryMb: 1, pids: 1 },
      netns: '/run/netns/plx-1',
      dir: '/tmp/x',
      logs: { maxBytes: 4096, files: 2 },
    }
    t.same(taskArgv(l, '/bin/server', { uid: 5, gid: 6 }), [
      '/usr/bin/env',
      '-i',
      'PATH=/bin',
      'A=b c',
      '/usr/bin/unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      '/usr/bin/nsenter',
      '--net=/run/netns/plx-1',
      '--root=/srv/root',
      '--wd=/',
      '--setgid=6',
      '--setuid=5',
      '--',
      '/bin/server',
      '--port',
      '80',
    ])
    const { rootfs: _, ...plain } = l
    t.notOk(
      taskArgv(plain, '/bin/server', undefined).some((a) => a.startsWith('--root') || a.startsWith('--set')),
    )
    // a resolv.conf is bind-mounted inside the task's own mount namespace, before nsenter enters the rootfs
    const withDns = taskArgv(
      { ...l, resolvConf: '/var/lib/plexus/runner/a/resolv.conf' },
      '/bin/server',
      undefined,
    )
    const at = withDns.indexOf('/bin/sh')
    t.ok(
      at > withDns.indexOf('/usr/bin/unshare') && at < withDns.indexOf('/usr/bin/nsenter'),
      'after unshare',
    )
    t.same(withDns.slice(at + 3, at + 5), [
      '/var/lib/plexus/runner/a/resolv.conf',
      '/srv/root/etc/resolv.conf',
    ])
    t.equal(
      taskArgv({ ...plain, resolvConf: '/r' }, '/bin/server', undefined)[withDns.indexOf('/bin/sh') + 4],
      '/etc/resolv.conf',
      "without a rootfs, over the host's path in the task's namespace",
    )
    // a hosts file (links) is bound the same way, after the resolv.conf
    const withHosts = taskArgv({ ...l, resolvConf: '/r', hosts: '/h' }, '/bin/server', undefined)
    const shells = withHosts.flatMap((a, i) => (a === '/bin/sh' ? [withHosts.slice(i + 3, i + 5)] : []))
    t.same(shells, [
      ['/r', '/srv/root/etc/resolv.conf'],
      ['/h', '/srv/root/etc/hosts'],
    ])
    t.ok(withHosts.lastIndexOf('/bin/sh') < withHosts.indexOf('/usr/bin/nsenter'), 'both before nsenter')
  },
)

t.test(
  'entering a task: its env only, its namespaces, root and cwd by pid, its user, then the command',
  async (t) => {
    const l: TaskLaunch = {
      allocId: 'a',
      task: 'web',
      command: ['server'],
      env: { PATH: '/bin', PLEXUS_ALLOC_ID: 'a' },
      rootfs: '/srv/root',
      user: 'worker',
      resources: { cpu: 1, memoryMb: 1, pids: 1 },
      netns: '/run/netns/plx-1',
      resolvConf: '/var/lib/plexus/runner/a/resolv.conf',
      dir: '/tmp/x',
      logs: { maxBytes: 4096, files: 2 },
    }
    t.same(enterArgv(l, 4242, ['/bin/ip', '-4', 'addr'], { uid: 5, gid: 6 }), [
      '/usr/bin/env',
      '-i',
      'PATH=/bin',
      'PLEXUS_ALLOC_ID=a',
      '/usr/bin/nsenter',
      '--target=4242',
      '--net',
      '--mount',
      '--root',
      '--wd',
      '--setgid=6',
      '--setuid=5',
      '--',
      '/bin/ip',
      '-4',
      'addr',
    ])
    // no rootfs, no user: the same entry (the root is the task's, whatever it is), no id switch
    const { rootfs: _r, user: _u, ...plain } = l
    t.same(enterArgv(plain, 7, ['/bin/true'], undefined), [
      '/usr/bin/env',
      '-i',
      'PATH=/bin',
      'PLEXUS_ALLOC_ID=a',
      '/usr/bin/nsenter',
      '--target=7',
      '--net',
      '--mount',
      '--root',
      '--wd',
      '--',
      '/bin/true',
    ])
  },
)
