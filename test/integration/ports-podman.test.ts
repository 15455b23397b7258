// A podman container started with `-p 18080:80` on a Plexus network is
// reachable on the published port: podman's CNI backend runs our plugin with
// runtimeConfig.portMappings, exactly as on a real host. Podman runs in h1's
// network namespace (nsenter --net, so the container namespace it mounts
// under /run/netns is visible to h1's agent), with private storage and an
// image made from busybox-static (no registry is reachable here).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { loadCluster } from '../../netns-fixtures/lib/state.js'
import { eventually, REPO, upCluster } from '../helpers/fixture.js'
import { busyboxRootfs, importImage, podmanOnCni } from '../helpers/podman.js'
import { PLUGIN } from './cni/plugin.js'

// fixture work that outlasts tap's 300 s default on a loaded 2-core machine (ports.test did in a helper's run)
t.setTimeout(900_000)

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const missing = ['podman', 'runc', 'busybox', 'nsenter'].filter((c) => !has(c))

t.test(
  'podman -p 18080:80 on a Plexus network',
  { skip: missing.length ? `not installed: ${missing.join(', ')}` : false },
  async (t) => {
    const c = upCluster(t, { hosts: 2, prefix: 'pm' })
    const dir = mkdtempSync('/tmp/plexus-podman-')
    const socket = loadCluster(c.name)?.hosts.find((h) => h.name === 'h1')?.socket
    t.ok(socket, 'h1 agent socket')

    // the image: busybox-static and a page for httpd
    const rootfs = busyboxRootfs(dir, ['sh', 'httpd']) as string
    mkdirSync(join(rootfs, 'www'))
    writeFileSync(join(rootfs, 'www/index.html'), 'served by podman\n')

    // podman's CNI backend, pointed at our plugin and a conflist for h1's agent
    mkdirSync(join(dir, 'net'))
    const conflist = JSON.parse(readFileSync(join(REPO, 'cni/10-plexus.conflist'), 'utf8'))
    conflist.cniVersion = '1.0.0' // what podman 4's libcni speaks; the plugin negotiates
    conflist.plugins[0].socket = socket
    writeFileSync(join(dir, 'net/10-plexus.conflist'), JSON.stringify(conflist))
    const podman = podmanOnCni(t, {
      dir,
      netns: `/run/netns/${c.name}-h1`,
      pluginDir: dirname(PLUGIN),
      networkDir: join(dir, 'net'),
    })
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))

    t.equal(importImage(podman, dir, rootfs, 'localhost/plexus-busybox'), 0)
    // small rlimits: the sandbox caps them
    const started = podman([
      'run',
      '-d',
      '--name',
      'pweb',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
      '--network',
      'plexus',
      '-p',
      '18080:80',
      'localhost/plexus-busybox',
      'httpd',
      '-f',
      '-p',
      '80',
      '-h',
      '/www',
    ])
    t.equal(started.status, 0, started.stderr)

    const rows = c.plexctlJson<{ hostPort: number; containerPort: number; container: string }[]>('h1', [
      'port',
      'ls',
    ])
    t.match(rows, [{ hostPort: 18080, containerPort: 80, container: 'pweb' }])
    const get = () =>
      c.exec('h2', [
        'node',
        '-e',
        "fetch('http://192.0.2.11:18080/index.html').then((r) => r.text()).then((b) => process.stdout.write(b))",
      ]).stdout
    const page = await eventually(() => get().includes('served by podman'), 5000)
    t.ok(page, 'reached from h2 on 192.0.2.11:18080')

    t.equal(podman(['rm', '-f', 'pweb']).status, 0)
    const clean = await eventually(
      () => !c.exec('h1', ['iptables-save']).stdout.includes('plexus:ports/'),
      10_000,
    )
    t.ok(clean, 'podman rm (CNI DEL) removes the rules')
  },
)
