// etcd as the store's reference (issue 20: what a flannel user runs instead of
// gossip): a cluster of Debian's etcd-server, one member in each of the first
// hosts' namespaces of a fixture, peers and clients on the fixture's underlay;
// watchers are etcdctl processes, one in each host's namespace; writes go
// through the members' JSON gateway. Nothing here reaches outside the
// namespaces the bench made.
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { HostState } from '../../netns-fixtures/lib/state.js'

const CLIENT_PORT = 2379
const PEER_PORT = 2380

export interface EtcdCluster {
  /** client URLs, one per member, in host order */
  endpoints: string[]
  pids: number[]
  stop(): void
}

/**
 * Starts one member in each of `hosts`' namespaces (data under the host's fixture folder, on the
 * same tmpfs as the agents' state). It takes writes once the members have elected a leader.
 */
export function startEtcd(hosts: HostState[], token: string): EtcdCluster {
  const peers = hosts.map((h) => `${h.name}=http://${h.ip}:${PEER_PORT}`).join(',')
  const endpoints = hosts.map((h) => `http://${h.ip}:${CLIENT_PORT}`)
  const procs: ChildProcess[] = hosts.map((h) => {
    const dir = join(h.dir, 'etcd')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const log = openSync(join(h.dir, 'etcd.log'), 'a')
    // `ip netns exec` execs etcd: the child's pid is the member's
    const member = spawn(
      'ip',
      [
        'netns',
        'exec',
        h.ns,
        'etcd',
        '--name',
        h.name,
        '--data-dir',
        join(dir, 'data'),
        '--listen-client-urls',
        `http://${h.ip}:${CLIENT_PORT}`,
        '--advertise-client-urls',
        `http://${h.ip}:${CLIENT_PORT}`,
        '--listen-peer-urls',
        `http://${h.ip}:${PEER_PORT}`,
        '--initial-advertise-peer-urls',
        `http://${h.ip}:${PEER_PORT}`,
        '--initial-cluster',
        peers,
        '--initial-cluster-token',
        token,
        '--initial-cluster-state',
        'new',
      ],
      { stdio: ['ignore', log, log] },
    )
    closeSync(log) // the member holds its own copy
    return member
  })
  const stop = () => {
    for (const p of procs) p.kill('SIGKILL')
  }
  return { endpoints, pids: procs.map((p) => p.pid ?? 0), stop }
}

/** One POST to a member's gateway (`/v3/kv/put`, `/v3/kv/range`, …); its JSON answer. */
export function gateway<T = unknown>(endpoint: string, path: string, body: unknown): Promise<T> {
  const url = new URL(path, endpoint)
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(JSON.parse(text) as T)
            : reject(new Error(`${res.statusCode} ${text}`)),
        )
      },
    )
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error(`etcd ${path}: no answer in 10 s`)))
    req.end(payload)
  })
}

export const b64 = (s: string) => Buffer.from(s).toString('base64')

/**
 * `etcdctl watch --prefix` in namespace `ns` against `endpoint`; `onKey` gets each key it prints
 * (the simple output is three lines an event: PUT or DELETE, the key, the value).
 */
export function watchPrefix(
  ns: string,
  endpoint: string,
  prefix: string,
  onKey: (key: string) => void,
): ChildProcess {
  const p = spawn(
    'ip',
    ['netns', 'exec', ns, 'etcdctl', `--endpoints=${endpoint}`, 'watch', '--prefix', prefix],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, ETCDCTL_API: '3' },
    },
  )
  let line = 0
  createInterface({ input: p.stdout as NodeJS.ReadableStream }).on('line', (l) => {
    if (line++ % 3 === 1) onKey(l)
  })
  return p
}
