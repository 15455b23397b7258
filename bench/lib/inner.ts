// A bench that must reach what only a fixture host's namespace reaches (etcd on
// its underlay address, its loopback) runs its measuring half there: the same
// script again with `--inner` and its arguments, through the fixture's `exec`.
// The inner half prints one JSON line last; it is returned parsed.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { REPO } from './report.js'

export function runInner<T>(cluster: string, host: string, scriptUrl: string, args: string[]): T {
  const out = execFileSync(
    join(REPO, 'netns-fixtures/cluster'),
    [
      'exec',
      '--name',
      cluster,
      '--host',
      host,
      '--',
      process.execPath,
      fileURLToPath(scriptUrl),
      '--inner',
      ...args,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 },
  )
  return JSON.parse(out.trim().split('\n').pop() as string) as T
}
