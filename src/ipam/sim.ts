import { pino } from 'pino'
import { DEFAULT_SIM, type SimHost, SimNetwork } from '../cluster/sim/network.js'
import { NODE_PREFIX } from '../store/types.js'
import { type Cidr, formatIPv4, sameCidr } from './cidr.js'
import { NETWORK_CONFIG_KEY } from './config.js'
import { LeaseManager, type LeaseManagerInit } from './manager.js'
import type { SubnetEnv } from './subnet-env.js'

// The lease rules under faults, in the deterministic simulator: every host
// runs the real LeaseManager over the real store and replication, on the
// simulator's clock (each host's own clock offset within the drift bound).
// Hosts outnumber subnets (exhaustion), containers come and go, and a seeded
// schedule isolates hosts, splits the cluster in halves, and crashes and
// restarts agents. A container is live while its host's bridge holds its
// subnet's address: set when the lease manager acquires, removed only when it
// gives the subnet up (a crashed agent leaves the kernel as it was). The
// invariant checked every 100 ms: no two live containers share an address.

export interface LeaseSimConfig {
  seed: number
  hosts: number
  /** subnets in the network (fewer than hosts: exhaustion) */
  subnets: number
  /** simulated run length */
  durationMs: number
  ttlMs: number
  /** bound of each host's clock offset (±half of it) and what the lease rules assume */
  driftMs: number
  /** mean time between faults */
  faultEveryMs: number
}

export const DEFAULT_LEASE_SIM: LeaseSimConfig = {
  seed: 1,
  hosts: 5,
  subnets: 4,
  durationMs: 10 * 60_000,
  ttlMs: 30_000,
  driftMs: 500,
  faultEveryMs: 15_000,
}

export interface LeaseSimResult {
  seed: number
  faults: Record<string, number>
  /** container starts (accepted ADDs) */
  containers: number
  /** ADDs refused because the lease was fenced or absent */
  refused: number
  /** "t=… 10.99.0.66 on h1 and h3" */
  violations: string[]
  /** ms during which two bridges held the same subnet address (no container need be involved) */
  subnetOverlapMs: number
  counters: Record<string, number>
}

interface Container {
  subnet: Cidr
  address: number
}

interface HostState {
  h: SimHost
  name: string
  lm?: LeaseManager
  shutdown?: AbortController
  /** the subnet whose gateway is on this host's bridge (kernel state: survives agent crashes) */
  bridge?: Cidr
  /** host clock time at which the kernel removes the bridge address unless the agent extends it */
  bridgeUntil?: number
  containers: Container[]
  /** round-robin allocation cursor per subnet, as the allocator's file keeps it */
  next: Map<number, number>
  /** subnet.env */
  memory?: SubnetEnv
}

const HEARTBEAT_MS = 1000
const NODE_TTL_MS = 10_000

export async function runLeaseSim(
  overrides: Partial<LeaseSimConfig> = {},
  log: (s: string) => void = () => {},
): Promise<LeaseSimResult> {
  const cfg = { ...DEFAULT_LEASE_SIM, ...overrides }
  const net = await SimNetwork.create({
    ...DEFAULT_SIM,
    seed: cfg.seed,
    hosts: cfg.hosts,
    writers: cfg.hosts,
    fullMesh: true,
    syncIntervalMs: 1000,
  })
  const q = net.queue
  const rng = net.rng
  const silent = pino({ level: 'silent' })
  const result: LeaseSimResult = {
    seed: cfg.seed,
    faults: {},
    containers: 0,
    refused: 0,
    violations: [],
    subnetOverlapMs: 0,
    counters: {},
  }
  const fault = (kind: string) => {
    result.faults[kind] = (result.faults[kind] ?? 0) + 1
  }
  const at = () => `t=${((q.now() - start) / 1000).toFixed(1)}s`

  const hosts: HostState[] = net.hosts.map((h, i) => {
    h.clockOffsetMs = Math.round((rng() - 0.5) * cfg.driftMs)
    return { h, name: `h${i + 1}`, containers: [], next: new Map() }
  })
  const lmInit = (s: HostState): LeaseManagerInit => ({
    ttlMs: cfg.ttlMs,
    settleMs: 2000,
    seed: false,
    retryMs: 1000,
    renewMs: Math.floor(cfg.ttlMs / 6),
    driftMs: cfg.driftMs,
    confirmDelayMs: 2000,
    contactMs: 3 * HEARTBEAT_MS + 1000,
    joined: () => true,
    underlay: async () => ({ address: `192.0.2.${s.h.index + 1}`, ifname: 'eth0', mtu: 1500 }),
    random: rng,
    clock: {
      now: () => s.h.now(),
      after: (ms, fn) =>
        s.h.scheduler.after(ms, () => {
          q.settled()
          fn()
        }),
    },
    subnetMemory: {
      read: async () => s.memory?.subnet,
      write: async (e) => {
        s.memory = e
      },
    },
  })

  const boot = (s: HostState) => {
    net.start(s.h)
    const beat = () => void s.h.store.put(`${NODE_PREFIX}${s.h.id}`, { name: s.name }, { ttlMs: NODE_TTL_MS })
    beat()
    s.h.scheduler.every(HEARTBEAT_MS, beat)
    s.h.scheduler.every(500, () => s.h.store.sweep())
    // a store change wakes the lease loop through a resolved promise: let it run before the next event
    s.h.store.watch('', () => q.settled())
    s.shutdown = new AbortController()
    const lm = new LeaseManager(
      {
        store: s.h.store,
        config: { name: s.name, runDir: '' },
        logger: silent,
        metrics: s.h.metrics,
        shutdown: s.shutdown.signal,
      },
      lmInit(s),
    )
    // the datapath: the bridge follows the lease (acquired: new gateway; lost: withdrawn at once)
    lm.on('acquired', (l) => {
      if (s.bridge && !sameCidr(s.bridge, l.cidr)) s.containers = []
      s.bridge = l.cidr
      s.bridgeUntil = undefined // the next datapath pass sets it for this lease
    })
    lm.on('lost', () => {
      s.bridge = undefined
      s.containers = []
    })
    s.lm = lm
    void lm.start()
  }
  const crash = (s: HostState) => {
    s.shutdown?.abort()
    s.lm = undefined
    s.h.crash()
  }

  const start = q.now()
  // host 1 writes the network config; everyone starts within a second
  const first = hosts[0] as HostState
  boot(first)
  await first.h.store.put(NETWORK_CONFIG_KEY, {
    Network: '10.99.0.0/16',
    SubnetLen: 24,
    SubnetMin: '10.99.1.0',
    SubnetMax: `10.99.${cfg.subnets}.0`,
    Backend: { Type: 'vxlan' },
  })
  for (const s of hosts.slice(1)) q.at(rng() * 1000, () => boot(s))

  // containers: ADD on a random host every ~300 ms, DEL now and then
  const churn = () => {
    const s = hosts[Math.floor(rng() * hosts.length)] as HostState
    if (rng() < 0.3 && s.containers.length) s.containers.splice(Math.floor(rng() * s.containers.length), 1)
    else if (s.lm && s.h.up) {
      const lease = s.lm.current()
      if (!lease || s.lm.status().state === 'fenced') result.refused++
      else {
        const cursor = s.next.get(lease.cidr.base) ?? 2
        s.next.set(lease.cidr.base, cursor >= 254 ? 2 : cursor + 1)
        const address = lease.cidr.base + cursor
        if (!s.containers.some((c) => c.address === address)) {
          s.containers.push({ subnet: lease.cidr, address })
          result.containers++
        }
      }
    }
    q.at(100 + rng() * 400, churn)
  }
  q.at(5000, churn)

  // faults
  let healAt = 0
  const faults = () => {
    const now = q.now()
    const r = rng()
    const len = (max: number) => 2000 + rng() * max
    if (r < 0.35 && now >= healAt) {
      const victim = Math.floor(rng() * hosts.length)
      net.partition([[victim]])
      healAt = now + len(2.5 * cfg.ttlMs)
      fault('isolate-one')
      log(`${at()} isolate h${victim + 1} until ${((healAt - start) / 1000).toFixed(1)}s`)
    } else if (r < 0.6 && now >= healAt) {
      const order = hosts.map((_, i) => i).sort(() => rng() - 0.5)
      net.partition([order.slice(0, Math.floor(hosts.length / 2))])
      healAt = now + len(2 * cfg.ttlMs)
      fault('split-halves')
      log(`${at()} split ${order.slice(0, Math.floor(hosts.length / 2)).map((i) => `h${i + 1}`)}`)
    } else {
      const up = hosts.filter((s) => s.h.up)
      const s = up[Math.floor(rng() * up.length)]
      if (s && up.length > 1) {
        // An agent crash leaves the kernel (bridge, containers) as it was, for any length of time: the bridge
        // address lasts only until the withdrawal time the agent last set on it (README.md). A host that goes
        // down takes its containers with it.
        const hostDown = rng() < 0.4
        crash(s)
        const down = len((rng() < 0.5 ? 0.3 : 2) * cfg.ttlMs)
        if (hostDown) {
          s.bridge = undefined
          s.containers = []
        }
        fault(hostDown ? 'host-down' : 'agent-crash')
        log(`${at()} ${hostDown ? 'host down' : 'agent crash'} ${s.name} for ${(down / 1000).toFixed(1)}s`)
        q.at(down, () => boot(s))
      }
    }
    q.at(cfg.faultEveryMs * (0.5 + rng()), faults)
  }
  const heal = () => {
    if (healAt && q.now() >= healAt) {
      net.heal()
      healAt = 0
    }
    q.at(250, heal)
  }
  q.at(20_000, faults)
  q.at(250, heal)

  // the invariant
  const seen = new Set<string>()
  let overlapping = false
  const describe = () =>
    hosts
      .map(
        (s) =>
          `${s.name}:${s.h.up ? s.lm?.status().state : 'down'}:${s.bridge ? formatIPv4(s.bridge.base) : '-'}`,
      )
      .join(' ')
  const check = () => {
    for (const s of hosts) {
      // the kernel: the bridge address expires at the withdrawal time last set, agent or no agent
      if (s.bridge && s.bridgeUntil !== undefined && s.h.now() >= s.bridgeUntil) {
        s.bridge = undefined
        s.containers = []
      }
      // the datapath's pass: a live agent extends the address to its lease's withdrawal time; a subnet the
      // lease manager gave up while the agent was down loses its address
      const cur = s.lm?.current()
      const until = s.lm?.status().withdrawAt
      if (cur && s.bridge && sameCidr(cur.cidr, s.bridge) && until) s.bridgeUntil = Date.parse(until)
      const gone = s.lm && !cur ? s.lm.withdrawn() : undefined
      if (gone && s.bridge && sameCidr(gone, s.bridge)) {
        s.bridge = undefined
        s.containers = []
      }
    }
    const owner = new Map<number, string>()
    for (const s of hosts) {
      if (!s.bridge) continue
      for (const c of s.containers) {
        if (!sameCidr(c.subnet, s.bridge)) continue
        const other = owner.get(c.address)
        if (other) {
          const id = `${formatIPv4(c.address)} ${other} ${s.name}`
          if (!seen.has(id)) {
            seen.add(id)
            result.violations.push(`${at()} ${formatIPv4(c.address)} on ${other} and ${s.name}`)
          }
        } else owner.set(c.address, s.name)
      }
    }
    const bridges = hosts.flatMap((s) => (s.bridge ? [s.bridge.base] : []))
    if (new Set(bridges).size !== bridges.length) {
      if (!overlapping) log(`${at()} two bridges hold one subnet: ${describe()}`)
      overlapping = true
      result.subnetOverlapMs += 100
    } else overlapping = false
    if ((q.now() - start) % 5000 < 100) log(`${at()} ${describe()}`)
    q.at(100, check)
  }
  q.at(100, check)

  await q.runUntil(start + cfg.durationMs)
  for (const s of hosts) {
    for (const [k, v] of Object.entries(await s.h.metrics.figures()))
      if (k.startsWith('plexus_ipam_lease_events_total')) result.counters[k] = (result.counters[k] ?? 0) + v
    s.shutdown?.abort()
  }
  // let the aborted loops finish
  await new Promise((r) => setImmediate(r))
  return result
}
