// A small multi-host topology in throwaway namespaces for datapath tests:
// an underlay bridge, K hosts each running a Reconciler on its own netlink
// socket and firewall, a lease table the test controls (standing in for the
// store), and one endpoint namespace per host attached to plexus0.

import { backendFor } from '../../../src/datapath/backend/index.js'
import { createFirewall, type FirewallKind } from '../../../src/datapath/firewall/index.js'
import type { SpoofEndpoint } from '../../../src/datapath/firewall/spoof.js'
import { datapathMetrics } from '../../../src/datapath/metrics.js'
import { Netlink } from '../../../src/datapath/netlink.js'
import { Reconciler } from '../../../src/datapath/reconciler.js'
import { cidrOf, formatCidr, formatIPv4 } from '../../../src/ipam/cidr.js'
import { type NetworkConfig, type NetworkConfigInput, parseNetworkConfig } from '../../../src/ipam/config.js'
import { validLeases } from '../../../src/ipam/leases.js'
import { createLogger } from '../../../src/lib/log.js'
import { Metrics } from '../../../src/lib/metrics.js'
import type { LeaseValue } from '../../../src/store/records.js'
import type { JsonValue, StoreRecord } from '../../../src/store/types.js'
import { nsExec, sh, type Teardownable, tempNetns } from './tempns.js'

export interface Host {
  i: number
  peerId: string
  ns: { name: string; path: string }
  address: string
  subnet: string
  nl: Netlink
  metrics: Metrics
  reconciler: Reconciler
  /** endpoint namespace and its address */
  ep: Container
  /** the host's endpoint records (hostVeth, mac, ipv4) by veth, as the store would hold them */
  endpoints: Map<string, SpoofEndpoint>
}

export interface Container {
  name: string
  path: string
  ip: string
  /** its host-side veth (set once attached) */
  veth?: string
  mac?: string
}

export interface Topology {
  network: NetworkConfig
  hosts: Host[]
  /** lease records by peer id, as the store would hold them */
  records: Map<string, StoreRecord>
  /** writes (or renews) host h's lease record */
  putLease(h: Host, ttlMs?: number): void
}

export function leaseRecord(
  peerId: string,
  value: LeaseValue,
  ttlMs: number,
  wall = Date.now(),
): StoreRecord {
  return {
    key: `leases/${peerId}`,
    value: value as unknown as JsonValue,
    owner: peerId,
    version: { wall, logical: 0 },
    ttlMs,
    tombstone: false,
    sig: '',
  }
}

/** the i-th /SubnetLen of the network (i >= 1) */
export function hostSubnet(network: NetworkConfig, i: number): string {
  const net = cidrOf(network.Network)
  return formatCidr({ base: net.base + i * 2 ** (32 - network.SubnetLen), prefix: network.SubnetLen })
}

export function nthAddress(subnet: string, n: number): string {
  return formatIPv4(cidrOf(subnet).base + n)
}

/** builds K hosts on one underlay segment; everything is removed on teardown */
export async function topology(
  t: Teardownable,
  opts: {
    hosts: number
    network: NetworkConfigInput
    firewall: FirewallKind
    intervalMs?: number
    endpoints?: boolean
  },
): Promise<Topology> {
  const network = parseNetworkConfig(opts.network)
  const backend = backendFor(network.Backend.Type)
  const underlay = tempNetns(t, 'u')
  nsExec(underlay.name, 'ip', ['link', 'add', 'br0', 'type', 'bridge'])
  nsExec(underlay.name, 'ip', ['link', 'set', 'br0', 'up'])
  const records = new Map<string, StoreRecord>()
  const logger = createLogger({ level: (process.env.PLEXUS_TEST_LOG as 'info') ?? 'warn', host: 'test' })
  const topo: Topology = {
    network,
    hosts: [],
    records,
    // An hour: the leases must outlive the test on a loaded machine (at load 30 one case took 143 s). A lapsed
    // lease stops all programming, and the drift checks then fail for a reason that is not theirs.
    putLease(h, ttlMs = 3_600_000) {
      const value: LeaseValue = {
        subnet: h.subnet,
        publicIp: h.address,
        hostname: `h${h.i}`,
        backend: backend.leaseData(network, h.peerId),
        claimedAt: 1_700_000_000_000 + h.i,
      }
      records.set(h.peerId, leaseRecord(h.peerId, value, ttlMs))
    },
  }
  for (let i = 1; i <= opts.hosts; i++) {
    const ns = tempNetns(t, `h${i}`)
    const address = `192.0.2.${10 + i}`
    const subnet = hostSubnet(network, i)
    const port = `u${i}-${ns.name.slice(-4)}`
    sh('ip', [
      'link',
      'add',
      port,
      'netns',
      underlay.name,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns.name,
    ])
    nsExec(underlay.name, 'ip', ['link', 'set', port, 'master', 'br0', 'up'])
    nsExec(ns.name, 'ip', ['addr', 'add', `${address}/24`, 'dev', 'eth0'])
    nsExec(ns.name, 'ip', ['link', 'set', 'eth0', 'up'])
    const nl = Netlink.open(ns.path)
    t.teardown(() => nl.close())
    const endpoints = new Map<string, SpoofEndpoint>()
    const metrics = new Metrics()
    const peerId = `peer${i}`
    const firewall = await createFirewall(opts.firewall, ns.path)
    const reconciler = new Reconciler({
      nl,
      firewall,
      logger: logger.child({ host: `h${i}` }),
      metrics: datapathMetrics(metrics),
      // no store here (leases are a Map the test edits), and nothing waits on converged()
      index: () => 0,
      intervalMs: opts.intervalMs ?? 1000,
      source: () => {
        const view = validLeases([...records.values()], network)
        const self = view.valid.find((l) => l.peerId === peerId)
        if (!self) return { waiting: 'no lease' }
        return {
          network,
          peerId,
          self,
          leases: view,
          underlay: { ifname: 'eth0', address },
          endpoints: [...endpoints.values()],
        }
      },
    })
    t.teardown(() => reconciler.stop())
    const ep = { ...tempNetns(t, `c${i}`), ip: nthAddress(subnet, 2) }
    topo.hosts.push({ i, peerId, ns, address, subnet, nl, metrics, reconciler, ep, endpoints })
  }
  for (const h of topo.hosts) topo.putLease(h)
  for (const h of topo.hosts) await h.reconciler.start()
  if (opts.endpoints === false) return topo
  for (const h of topo.hosts) await attach(h, h.ep, `veth-c${h.i}`)
  return topo
}

/**
 * What the CNI plugin does, done with the same netlink helpers: the
 * container's veth on plexus0, its address and default route, and its
 * endpoint record (which the host's next pass guards).
 */
export async function attach(h: Host, c: Container, veth: string): Promise<void> {
  const br = await h.nl.linkByName('plexus0')
  const link = await h.nl.createVeth(veth, { name: 'eth0', nsPath: c.path }, { mtu: br.mtu })
  await h.nl.setLink(link.index, { master: br.index, up: true })
  nsExec(c.name, 'ip', ['addr', 'add', `${c.ip}/24`, 'dev', 'eth0'])
  nsExec(c.name, 'ip', ['link', 'set', 'eth0', 'up'])
  nsExec(c.name, 'ip', ['route', 'add', 'default', 'via', nthAddress(h.subnet, 1)])
  c.veth = veth
  c.mac = macOf(c.name, 'eth0')
  h.endpoints.set(veth, { hostVeth: veth, mac: c.mac, ipv4: c.ip })
}

export function macOf(ns: string, ifname: string): string {
  return /link\/ether (\S+)/.exec(nsExec(ns, 'ip', ['link', 'show', ifname]))?.[1] ?? ''
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** polls fn until it returns true or timeoutMs passes; returns the time it took, or -1 */
export async function waitFor(fn: () => boolean, timeoutMs: number, stepMs = 50): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    if (fn()) return Date.now() - start
    await sleep(stepMs)
  }
  return fn() ? Date.now() - start : -1
}

export function pingOk(from: string, to: string, size?: number): boolean {
  try {
    const args = ['-c', '1', '-W', '2', ...(size === undefined ? [] : ['-M', 'do', '-s', String(size)]), to]
    nsExec(from, 'ping', args)
    return true
  } catch {
    return false
  }
}

const SINK = `
const net = require('node:net')
const srv = net.createServer((c) => {
  let n = 0
  c.on('data', (d) => { n += d.length })
  c.on('end', () => { c.end(JSON.stringify({ bytes: n, from: c.remoteAddress })); srv.close() })
})
srv.listen(Number(process.argv[1]), '0.0.0.0', () => process.stdout.write('ready\\n'))
`
const SOURCE = `
const net = require('node:net')
const [ip, port, bytes] = process.argv.slice(1)
const c = net.connect(Number(port), ip, () => {
  const chunk = Buffer.alloc(65536)
  let left = Number(bytes)
  const pump = () => {
    while (left > 0) {
      const b = chunk.subarray(0, Math.min(left, chunk.length))
      left -= b.length
      if (!c.write(b)) return c.once('drain', pump)
    }
    c.end()
  }
  pump()
})
let reply = ''
c.setTimeout(20000, () => c.destroy(new Error('timeout')))
c.on('data', (d) => { reply += d })
c.on('end', () => process.stdout.write(reply))
`

/**
 * moves `bytes` over TCP from one namespace to another (a Node sender and
 * sink, so the count is exact); returns the bytes the sink got
 */
export async function tcpTransfer(from: string, to: string, toIp: string, bytes: number): Promise<number> {
  return (await tcpSession(from, to, toIp, bytes)).bytes
}

/** what the receiving side of a TCP connection sees: bytes received and the client's source address */
export async function tcpSession(
  from: string,
  to: string,
  toIp: string,
  bytes: number,
): Promise<{ bytes: number; from: string }> {
  const { spawn } = await import('node:child_process')
  const port = String(5201 + Math.floor(Math.random() * 1000))
  const sink = spawn('ip', ['netns', 'exec', to, process.execPath, '-e', SINK, port], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    await new Promise<void>((resolve, reject) => {
      sink.stdout.once('data', () => resolve())
      sink.once('close', () => reject(new Error('sink exited')))
    })
    return JSON.parse(nsExec(from, process.execPath, ['-e', SOURCE, toIp, port, String(bytes)])) as {
      bytes: number
      from: string
    }
  } finally {
    sink.kill()
  }
}
