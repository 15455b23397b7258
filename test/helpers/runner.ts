// What the runner's fixture tests read: allocations as `plexctl allocs -o json`
// lists them, a host's runner record of one, the processes in a namespace and
// the CNI ADDs a host's runner made.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Cluster } from './fixture.js'

export interface Alloc {
  id: string
  group: string
  jobVersion: number
  replaces?: string
  hostName: string
  status: string
  restarts: number
  address?: string
  reason?: string
  tasks: Record<string, { state: string; restarts: number; reason?: string }>
}

/** `<stateDir>/runner/<id>/alloc.json`, the fields the tests read */
export interface LocalAlloc {
  netns: string
  tasks: { name: string; handle?: { pid: number } }[]
}

export const hostDir = (c: Cluster, host: string): string => `/run/plexus-fixture/${c.name}/${host}`

export const localAlloc = (c: Cluster, host: string, id: string): LocalAlloc =>
  JSON.parse(readFileSync(join(hostDir(c, host), 'state/runner', id, 'alloc.json'), 'utf8'))

/**
 * Processes whose network namespace is the one with this inode, found through
 * /proc (the namespace's /run/netns name is a mount the test's own mount
 * namespace may not see: the fixture's agents run under `ip netns exec`).
 */
export const pidsInNetns = (inode: number): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return statSync(`/proc/${d}/ns/net`).ino === inode
      } catch {
        return false
      }
    })
    .map(Number)
    .sort((a, b) => a - b)

/** how many times a host's runner attached this allocation (a CNI ADD each) */
export const attaches = (c: Cluster, host: string, id: string): number =>
  readFileSync(join(hostDir(c, host), 'plexusd.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('allocation attached') && l.includes(id)).length
