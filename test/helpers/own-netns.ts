// Runs a test file inside a throwaway network namespace: the first run creates
// the namespace and re-executes the same file in it (its TAP output passes
// straight through), then removes the namespace, also when the child fails or
// the runner kills us. Everything the test binds, including loopback ports,
// then lives in that namespace only.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const ENV = 'PLEXUS_TEST_NETNS'

/** Returns the namespace name when running inside it; otherwise never returns (re-executes and exits). */
export async function ownNetns(fileUrl: string, prefix: string): Promise<string> {
  const inside = process.env[ENV]
  if (inside) return inside
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`
  const del = () => spawnSync('ip', ['netns', 'del', ns])
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' })
  if (add.status !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`)
  let code = 1
  try {
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    // 127.0.0.0/8 is all on lo: extra loopback addresses need no configuration
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(fileUrl)], {
      stdio: 'inherit',
      env: { ...process.env, [ENV]: ns },
    })
    const forward = (sig: NodeJS.Signals) => child.kill(sig)
    process.on('SIGTERM', forward)
    process.on('SIGINT', forward)
    code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))))
  } finally {
    del()
  }
  process.exit(code)
}
