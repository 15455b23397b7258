// Real runtimes drive the plugin: podman 4 (CNI backend, runc, cgroupfs, a
// local rootfs from busybox-static) and containerd's `ctr run --cni --rootfs`.
// A wrapper in front of the plugin records what each runtime really sends
// (environment and stdin); the containers run on h1 and reach one on h2.
import { spawn, spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { eventually, REPO, run, upCluster } from '../../helpers/fixture.js'
import { busyboxRootfs, importImage, podmanOnCni } from '../../helpers/podman.js'
import { allocations, hostVeths, PLUGIN, socketOf, waitReady } from './plugin.js'

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
t.setTimeout(600_000)

const c = upCluster(t, { hosts: 2, prefix: 'cr' })
await waitReady(c, 'h1')
await waitReady(c, 'h2')
const dir = mkdtempSync('/tmp/plexus-runtimes-')
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// a container on h2 to reach across the overlay
t.equal(c.run('h2', 'target', ['sleep', '600']).status, 0)
const target = c
  .plexctlJson<{ name: string; ipv4: string }[]>('h2', ['endpoints'])
  .find((e) => e.name === 'target')?.ipv4 as string

// the rootfs: busybox-static only (no image registry here); both tests skip without it
const rootfs = busyboxRootfs(dir, ['sh', 'ping', 'ip', 'sleep', 'cat', 'grep']) || ''

// the plugin behind a recorder: <dir>/cap/<time>.<COMMAND>.{env,stdin}
const bin = join(dir, 'bin')
const cap = join(dir, 'cap')
mkdirSync(bin)
mkdirSync(cap)
const wrapper = `#!/bin/sh
n=$(date +%s%N).$CNI_COMMAND
env | grep '^CNI_' | sort > ${cap}/$n.env
tee ${cap}/$n.stdin | ${PLUGIN}
`
writeFileSync(join(bin, 'plexus'), wrapper, { mode: 0o755 })
// the conflist as shipped, only pointed at the fixture's agent
const conflist = (name: string) => {
  const shipped = JSON.parse(readFileSync(join(REPO, 'cni/10-plexus.conflist'), 'utf8'))
  shipped.name = name
  shipped.plugins[0].socket = socketOf(c, 'h1')
  return JSON.stringify(shipped)
}

interface Call {
  command: string
  env: Record<string, string>
  stdin: Record<string, unknown>
}
function calls(): Call[] {
  const files = readdirSync(cap)
    .filter((f) => f.endsWith('.env'))
    .sort()
  const out = files.map((f) => {
    const base = f.slice(0, -4)
    const env = Object.fromEntries(
      readFileSync(join(cap, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
    const text = readFileSync(join(cap, `${base}.stdin`), 'utf8')
    return { command: env.CNI_COMMAND ?? '', env, stdin: text ? JSON.parse(text) : {} }
  })
  for (const f of readdirSync(cap)) rmSync(join(cap, f))
  return out
}

const pingOk = (out: string) => / 0% packet loss/.test(out)

const podmanMissing = ['podman', 'runc', 'nsenter', 'busybox'].filter((x) => !has(x))
t.test(
  'podman 4 (CNI backend) on h1 reaches a container on h2',
  { skip: podmanMissing.length ? `not installed: ${podmanMissing}` : false },
  async (t) => {
    const net = join(dir, 'podman-net')
    mkdirSync(net)
    writeFileSync(join(net, '10-plexus.conflist'), conflist('plexus'))
    const podman = podmanOnCni(t, {
      dir,
      netns: `/run/netns/${c.name}-h1`,
      pluginDir: bin,
      networkDir: net,
    })
    t.equal(importImage(podman, dir, rootfs, 'localhost/plexus-busybox'), 0)
    const limits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']

    const started = podman([
      'run',
      '-d',
      '--name',
      'pod1',
      ...limits,
      '--network',
      'plexus',
      '--mac-address',
      '02:00:00:0a:0b:0c',
      'localhost/plexus-busybox',
      'sleep',
      '600',
    ])
    t.equal(started.status, 0, started.stderr)
    const listed = await eventually(
      () => c.plexctlJson<{ name: string }[]>('h2', ['endpoints']).some((e) => e.name === 'pod1'),
      1000,
      50,
    )
    t.ok(listed, 'h2 lists the podman container within a second')
    const ping = podman(['exec', 'pod1', 'ping', '-c2', '-W2', target])
    t.ok(pingOk(ping.stdout), `podman container reaches ${target} on h2: ${ping.stdout}${ping.stderr}`)
    t.match(
      podman(['exec', 'pod1', 'cat', '/etc/resolv.conf']).stdout,
      /search svc\.plexus\.internal plexus\.internal/,
    )
    t.equal(podman(['rm', '-f', 'pod1']).status, 0)

    const seen = calls()
    t.comment(`podman sent: ${JSON.stringify(seen)}`)
    const add = seen.find((x) => x.command === 'ADD')
    t.match(
      add?.env.CNI_ARGS,
      /IgnoreUnknown=1;K8S_POD_NAME=pod1;MAC=02:00:00:0a:0b:0c/,
      'podman passes name and MAC in CNI_ARGS',
    )
    t.match(add?.env.CNI_NETNS, /^\/run\/netns\/netns-/)
    t.ok(
      seen.some((x) => x.command === 'VERSION'),
      'podman probes VERSION first (with CNI_NETNS=dummy)',
    )
    const del = seen.find((x) => x.command === 'DEL')
    t.ok(del?.stdin.prevResult, 'DEL carries prevResult')
    t.same(hostVeths(c, 'h1'), [], 'no veth left on h1')
    t.same(allocations(c, 'h1'), [], 'no address left on h1')
  },
)

const ctrMissing = ['containerd', 'ctr', 'runc', 'busybox'].filter((x) => !has(x))
t.test(
  'containerd `ctr run --cni --rootfs` on h1 reaches a container on h2',
  { skip: ctrMissing.length ? `not installed: ${ctrMissing}` : false },
  async (t) => {
    // Debian's ctr reads /etc/cni/net.d (first file by name) and runs plugins from /opt/cni/bin:/usr/lib/cni;
    // it has no flags for either, so the test puts its files there and takes them away again.
    const conf = `/etc/cni/net.d/00-plexus-${c.name}.conflist`
    const optBin = '/opt/cni/bin'
    // the first directory mkdir made (undefined when /opt/cni/bin was there), removed again afterwards
    const made = mkdirSync(optBin, { recursive: true })
    const link = join(optBin, 'plexus')
    t.notOk(existsSync(link), `${link} must not exist yet`)
    symlinkSync(join(bin, 'plexus'), link)
    writeFileSync(conf, conflist('plexus'))
    const ctrd = join(dir, 'containerd')
    mkdirSync(ctrd)
    const sock = join(ctrd, 'containerd.sock')
    writeFileSync(
      join(ctrd, 'config.toml'),
      // its "opt" plugin would otherwise make /opt/containerd
      `version = 2\nroot = "${ctrd}/root"\nstate = "${ctrd}/state"\n[grpc]\n  address = "${sock}"\n` +
        `[plugins."io.containerd.internal.v1.opt"]\n  path = "${ctrd}/opt"\n`,
    )
    const daemon = spawn('containerd', ['--config', join(ctrd, 'config.toml')], { stdio: 'ignore' })
    t.teardown(() => {
      daemon.kill('SIGTERM')
      rmSync(conf, { force: true })
      rmSync(link, { force: true })
      if (made) rmSync(made, { recursive: true, force: true })
    })
    t.ok(
      await eventually(() => run('ctr', ['--address', sock, 'version']).status === 0, 10_000),
      'containerd up',
    )
    const r = run('ctr', [
      ...['--address', sock, 'run', '--rm', '--cni', '--rootfs', rootfs, 'ctr1'],
      ...['/bin/ping', '-c2', '-W2', target],
    ])
    t.ok(pingOk(r.stdout), `ctr container reaches ${target} on h2: ${r.stdout}${r.stderr}`)

    const seen = calls()
    t.comment(`ctr sent: ${JSON.stringify(seen)}`)
    const add = seen.find((x) => x.command === 'ADD')
    t.equal(add?.env.CNI_CONTAINERID, 'default-ctr1', 'ctr: <namespace>-<id>')
    t.match(add?.env.CNI_NETNS, /^\/proc\/\d+\/ns\/net$/, 'ctr passes a /proc/<pid>/ns/net path')
    t.equal(add?.env.CNI_ARGS ?? '', '', 'and no CNI_ARGS')
    const del = seen.find((x) => x.command === 'DEL')
    t.equal(del?.env.CNI_NETNS, '', 'DEL after the task exited: empty CNI_NETNS')
    t.same(hostVeths(c, 'h1'), [], 'no veth left on h1')
    t.same(allocations(c, 'h1'), [], 'no address left on h1')
  },
)
