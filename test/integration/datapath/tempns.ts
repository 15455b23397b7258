// Throwaway network namespaces for datapath tests: uniquely named, removed in
// t.teardown even when the test fails. Used until netns-fixtures/cluster
// covers a case.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export interface Teardownable {
  teardown(fn: () => void | Promise<void>): void
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** runs a command inside the named namespace */
export function nsExec(name: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', name, cmd, ...args])
}

/** creates plx-<random> with lo up; returns its name and /run/netns path */
export function tempNetns(t: Teardownable, tag = 't'): { name: string; path: string } {
  const name = `plx-${tag}-${randomBytes(4).toString('hex')}`
  sh('ip', ['netns', 'add', name])
  t.teardown(() => {
    try {
      sh('ip', ['netns', 'del', name])
    } catch {
      // already gone
    }
  })
  nsExec(name, 'ip', ['link', 'set', 'lo', 'up'])
  return { name, path: `/run/netns/${name}` }
}
