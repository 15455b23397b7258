// What the runner's fixture tests read: allocations as `plexctl allocs -o json`
// lists them, a host's runner record of one, the processes in a namespace and
// the CNI ADDs a host's runner made.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import type { Cluster } from './fixture.js'

/**
 * One request to a host's API socket, on a connection of its own (no keep-alive to race the server's
 * close): milliseconds, where a plexctl process is half a second or more on a busy machine, so loops
 * that poll sample often enough and cycles measure the agent, not node's start-up.
 * With timeoutMs, a connection silent that long fails the request (a poll must not wait on a stuck agent).
 */
export function hostApi<T>(
  c: Cluster,
  host: string,
  method: string,
  path: string,
  body?: unknown,
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  const data = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: join(hostDir(c, host), 'run/plexusd.sock'),
        method,
        path,
        agent: false,
        headers: data
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }
          : {},
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          text += d
        })
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 300)
            reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))
          else
            try {
              resolve((text ? JSON.parse(text) : undefined) as T)
            } catch (err) {
              reject(err)
            }
        })
      },
    )
    req.on('error', reject)
    if (opts.timeoutMs)
      req.setTimeout(opts.timeoutMs, () =>
        req.destroy(new Error(`${method} ${path}: no answer in ${opts.timeoutMs} ms`)),
      )
    req.end(data)
  })
}

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

/** a group's `tasks:` (YAML at a group's indentation) of one task that only sleeps: for tests about the allocation, not the task */
export const SLEEP_TASKS = `    tasks:
      - name: t
        driver: exec
        config: { command: ["sleep", "600"] }
        resources: { cpu: 250, memoryMb: 8 }
        killTimeoutMs: 500
`

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
