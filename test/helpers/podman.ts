// Podman on its CNI backend for the integration tests: an image made from
// busybox-static (no image registry is reachable here) and a podman that runs
// in a fixture host's network namespace with private storage, so the
// container namespace it mounts under /run/netns is visible to that host's agent.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { type RunResult, run } from './fixture.js'

/** dir/rootfs with busybox-static and the given applets; false when busybox is not installed */
export function busyboxRootfs(dir: string, applets: string[]): string | false {
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim()
  if (!busybox) return false
  const rootfs = join(dir, 'rootfs')
  mkdirSync(join(rootfs, 'bin'), { recursive: true })
  writeFileSync(join(rootfs, 'bin/busybox'), readFileSync(busybox), { mode: 0o755 })
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a))
  return rootfs
}

export type Podman = (args: string[]) => RunResult

/** where podman runs and what its CNI backend reads */
export interface PodmanPlace {
  dir: string
  netns: string
  pluginDir: string
  networkDir: string
}

/**
 * podman in the namespace netns (a path), its CNI backend reading conflists
 * from networkDir and plugins from pluginDir, storage under dir. The caller
 * removes its containers and storage (`rm -f -a`, `system reset -f`).
 */
export function podmanCommand(o: PodmanPlace): Podman {
  const conf = join(o.dir, 'containers.conf')
  writeFileSync(
    conf,
    [
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ["${o.pluginDir}"]`,
      `network_config_dir = "${o.networkDir}"`,
      '',
    ].join('\n'),
  )
  const env = { ...process.env, CONTAINERS_CONF: conf }
  // runc: crun refuses this machine's hybrid cgroup layout
  return (args) =>
    run(
      'nsenter',
      [
        `--net=${o.netns}`,
        'podman',
        ...['--root', join(o.dir, 'proot'), '--runroot', join(o.dir, 'prun'), '--runtime', 'runc'],
        ...['--cgroup-manager', 'cgroupfs', '--events-backend', 'file'],
        ...args,
      ],
      { env },
    )
}

/** podmanCommand whose containers and storage are removed when t ends */
export function podmanOnCni(t: Test, o: PodmanPlace): Podman {
  const podman = podmanCommand(o)
  t.teardown(() => {
    podman(['rm', '-f', '-a'])
    podman(['system', 'reset', '-f'])
  })
  return podman
}

/** imports rootfs as the image `name`; the exit status of podman import */
export function importImage(podman: Podman, dir: string, rootfs: string, name: string): number | null {
  const tar = join(dir, 'rootfs.tar')
  if (run('tar', ['-C', rootfs, '-cf', tar, '.']).status !== 0) return 1
  return podman(['import', tar, name]).status
}
