// A bench that must reach what only a fixture host's namespace reaches (etcd on
// its underlay address, its loopback) runs its measuring half there: the same
// script again with `--inner` and its arguments, through the fixture's `exec`.
// The inner half prints one JSON line last; it is returned parsed.
import { execFile, execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { REPO } from './report.js'

/** the fixture's `exec` of scriptUrl --inner args in host's namespace */
function innerCommand(
  cluster: string,
  host: string,
  scriptUrl: string,
  args: string[],
  nodeArgs: string[] = [],
): [string, string[]] {
  return [
    join(REPO, 'netns-fixtures/cluster'),
    [
      'exec',
      '--name',
      cluster,
      '--host',
      host,
      '--',
      process.execPath,
      ...nodeArgs,
      fileURLToPath(scriptUrl),
      '--inner',
      ...args,
    ],
  ]
}

const lastLine = <T>(out: string): T => JSON.parse(out.trim().split('\n').pop() as string) as T

export function runInner<T>(cluster: string, host: string, scriptUrl: string, args: string[]): T {
  const [cmd, argv] = innerCommand(cluster, host, scriptUrl, args)
  return lastLine<T>(
    execFileSync(cmd, argv, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 26,
    }),
  )
}

/** runInner without blocking the event loop (several hosts' inner halves at once), with node's flags */
export function runInnerAsync<T>(
  cluster: string,
  host: string,
  scriptUrl: string,
  args: string[],
  nodeArgs: string[] = [],
): Promise<T> {
  const [cmd, argv] = innerCommand(cluster, host, scriptUrl, args, nodeArgs)
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26 }, (err, out) =>
      err ? reject(err) : resolve(lastLine<T>(out)),
    )
    p.stderr?.pipe(process.stderr)
  })
}
