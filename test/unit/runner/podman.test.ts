// The podman driver's pure parts: the container name, storage arguments, the
// `podman run` argv (network namespace, limits, environment, resolv.conf, image
// or rootfs), the open-file limit taken from the agent's own, and what
// `podman inspect` states mean to the runner.
import t from 'tap'
import type { TaskLaunch } from '../../../src/runner/driver.js'
import {
  containerName,
  globalArgs,
  observedOf,
  ownLimit,
  podmanError,
  runArgv,
} from '../../../src/runner/podman/args.js'

const launch: TaskLaunch = {
  allocId: 'shop-web-0123456789',
  task: 'web',
  command: ['httpd', '-f', '-p', '80'],
  env: { PATH: '/bin', PLEXUS_ALLOC_ID: 'shop-web-0123456789', A: 'b c' },
  user: 'www',
  resources: { cpu: 250, memoryMb: 64, pids: 100 },
  netns: '/run/netns/plx-0123456789ab',
  resolvConf: '/var/lib/plexus/runner/shop-web-0123456789/resolv.conf',
  dir: '/var/lib/plexus/runner/shop-web-0123456789/web',
  logs: { maxBytes: 4096, files: 3 },
}

/** the value after a flag, every time it appears */
const after = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []))

t.test('names and storage', async (t) => {
  t.equal(containerName('shop-web-0123456789', 'web'), 'plx-shop-web-0123456789-web')
  t.same(globalArgs({}), [], "podman's own storage by default")
  t.same(globalArgs({ binary: 'podman', root: '/srv/p', runroot: '/run/p' }), [
    '--root',
    '/srv/p',
    '--runroot',
    '/run/p',
  ])
})

t.test(
  'podman run: the allocation netns, limits, env, user, resolv.conf, then image and command',
  async (t) => {
    const argv = runArgv({ ...launch, image: 'localhost/web:1' }, '20000:20000')
    t.same(argv.slice(0, 3), ['run', '-d', '--replace'], 'detached; a leftover of the same name is replaced')
    t.same(after(argv, '--name'), ['plx-shop-web-0123456789-web'])
    t.same(
      after(argv, '--network'),
      ['ns:/run/netns/plx-0123456789ab'],
      "the runner's namespace, not podman's",
    )
    t.same(after(argv, '--pull'), ['never'], 'offline: never a registry')
    t.same(after(argv, '--log-driver'), ['passthrough'], 'output to the supervisor (multilog)')
    t.same(after(argv, '--memory'), ['64m'])
    t.same(after(argv, '--memory-swap'), ['64m'], 'no swap beyond the limit')
    t.same(after(argv, '--cpus'), ['0.25'], '250 millicores')
    t.same(after(argv, '--pids-limit'), ['100'])
    t.same(after(argv, '--ulimit'), ['nofile=20000:20000', 'nproc=100:100'])
    t.same(after(argv, '--user'), ['www'])
    t.same(after(argv, '--env'), ['PATH=/bin', 'PLEXUS_ALLOC_ID=shop-web-0123456789', 'A=b c'])
    t.same(after(argv, '--volume'), [
      '/var/lib/plexus/runner/shop-web-0123456789/resolv.conf:/etc/resolv.conf:ro',
    ])
    t.same(after(argv, '--label'), ['plexus.alloc=shop-web-0123456789', 'plexus.task=web'])
    t.same(argv.slice(-5), ['localhost/web:1', 'httpd', '-f', '-p', '80'], 'the image, then the command')
    t.notOk(argv.includes('--rootfs'))
  },
)

t.test(
  'podman run from a rootfs: an overlay over the directory; the image command when none is given',
  async (t) => {
    const { user: _, resolvConf: __, ...plain } = launch
    const argv = runArgv({ ...plain, rootfs: '/srv/rootfs' }, undefined)
    t.same(argv.slice(-6), ['--rootfs', '/srv/rootfs:O', 'httpd', '-f', '-p', '80'])
    t.same(after(argv, '--ulimit'), ['nproc=100:100'], 'no nofile when the agent could not read its own')
    t.notOk(argv.includes('--user') || argv.includes('--volume'))
    t.same(
      after(
        runArgv({ ...plain, rootfs: '/srv/rootfs', hosts: '/var/lib/plexus/runner/a/hosts' }, undefined),
        '--volume',
      ),
      ['/var/lib/plexus/runner/a/hosts:/etc/hosts:ro'],
      "the allocation's hosts file (links) over /etc/hosts",
    )
    t.same(runArgv({ ...plain, image: 'localhost/web', command: [] }, undefined).at(-1), 'localhost/web')
  },
)

t.test("the agent's own open-file limit from /proc/self/limits", async (t) => {
  const limits = `Limit                     Soft Limit           Hard Limit           Units
Max processes             96362                96362                processes
Max open files            1024                 20000                files
Max locked memory         unlimited            unlimited            bytes
`
  t.equal(ownLimit(limits, 'Max open files'), '1024:20000')
  t.equal(ownLimit(limits, 'Max locked memory'), '-1:-1', 'unlimited is -1')
  t.equal(ownLimit(limits, 'Max msgqueue size'), undefined)
})

t.test('podman inspect states as the runner sees them', async (t) => {
  t.same(observedOf({ Status: 'running', Pid: 5 }, 64), { state: 'running' })
  t.same(observedOf({ Status: 'exited', ExitCode: 0 }, 64), { state: 'exited', exitCode: 0 })
  t.same(observedOf({ Status: 'exited', ExitCode: 137 }, 64), {
    state: 'exited',
    exitCode: 137,
    signal: 'SIGKILL',
  })
  t.match(observedOf({ Status: 'exited', ExitCode: 137, OOMKilled: true }, 64), {
    signal: 'SIGKILL',
    reason: /memory limit hit \(64 MiB\)/,
  })
  t.match(observedOf({ Status: 'stopped', ExitCode: 127 }, 64), { exitCode: 127, reason: /not found/ })
  t.same(observedOf({ Status: 'created' }, 64), { state: 'gone' }, 'never ran')
  t.same(observedOf({ Status: 'removing' }, 64), { state: 'gone' })
})

t.test("podman's complaint in its output", async (t) => {
  t.equal(
    podmanError('runc create failed: x\nError: runc: exec: "nosuch": executable file not found\n'),
    'runc: exec: "nosuch": executable file not found',
  )
  t.equal(podmanError('hello\n'), undefined)
})
