import { signingText } from '../../store/record.js'
import { encodeDelta } from '../wire.js'
import { DEFAULT_SIM, type SimConfig, type SimHost, SimNetwork } from './network.js'

// The replication scenario the unit test and bench/converge run: cold start,
// one write spreading to every host, a partition with writes, deletes,
// crashes and an attacker on both sides, then heal and check the invariants.

export interface SimResult {
  hosts: number
  seed: number
  /** hosts that wrote node records at cold start */
  writers: number
  /** simulated ms until every host held every writer's node record after a cold start */
  coldStartMs: number
  /** simulated ms from one write until every host has it, and until half have it */
  writeAllMs: number
  writeHalfMs: number
  /** simulated ms from heal until all hosts hold the same map */
  healMs: number
  /** anti-entropy rounds (sync intervals) the heal took */
  healRounds: number
  converged: boolean
  /** invariant violations found (empty = all held) */
  violations: string[]
  rejected: Record<string, number>
  messages: { sent: number; lost: number; cut: number }
}

const up = (net: SimNetwork) => net.hosts.filter((h) => h.up)

/** Every held record (live or dead) as one comparable string per host. */
function fingerprint(h: SimHost): string {
  return h.store
    .recordsAfter(new Map())
    .map((r) => `${r.key}|${r.owner}|${r.version.wall}.${r.version.logical}|${r.tombstone ? 'T' : ''}`)
    .sort()
    .join('\n')
}

/** Cheap order-independent checksum for polling; the exact comparison runs once at the end. */
function checksum(h: SimHost): string {
  let sum = 0
  let n = 0
  for (const r of h.store.recordsAfter(new Map())) {
    n++
    sum = (sum + r.version.wall * 7 + r.version.logical * 13 + r.key.length + (r.tombstone ? 1 : 0)) % 2 ** 48
  }
  return `${n}:${sum}`
}

function allSame(net: SimNetwork): boolean {
  const hs = up(net)
  const first = checksum(hs[0] as SimHost)
  return hs.every((h) => checksum(h) === first)
}

/** The attacker publishes bad deltas through the real gossip path; returns the values it tried to plant. */
async function attack(mallory: SimHost, victim: SimHost): Promise<string[]> {
  const real = victim.store.get(`nodes/${victim.id}`)
  if (!real) return []
  // 1. forged: victim's record with a changed value, original signature
  const forged = {
    ...real,
    value: { name: 'forged' },
    version: { ...real.version, logical: real.version.logical + 1 },
  }
  // 2. non-owner: mallory signs, validly, a write to the victim's lease under its own name
  const own = await mallory.store.put('scratch/mallory', 1)
  const claim = { ...own, key: `leases/${victim.id}`, value: { subnet: 'non-owner' } }
  const nonOwner = { ...claim, sig: mallory.signer.sign(signingText(claim)) }
  // 3. unsigned
  const unsigned = { ...own, key: 'config/unsigned', value: 'unsigned', sig: '' }
  const t = mallory.transport
  t.publish(encodeDelta([forged as never]))
  t.publish(encodeDelta([nonOwner as never]))
  t.publish(encodeDelta([unsigned as never]))
  t.publish(new TextEncoder().encode('{"t":"delta","records":[{"key":'))
  t.publish(new Uint8Array(200 * 1024))
  return ['forged', 'non-owner', 'unsigned']
}

export async function runScenario(overrides: Partial<SimConfig> = {}, log: (s: string) => void = () => {}) {
  const cfg = { ...DEFAULT_SIM, ...overrides }
  const net = await SimNetwork.create(cfg)
  const n = cfg.hosts
  const violations: string[] = []

  // cold start: hosts come up over half a second; the writers (spread evenly) write their node records
  const stride = Math.max(1, Math.floor(n / cfg.writers))
  const writers = net.hosts.filter((h) => h.index % stride === 0).slice(0, cfg.writers)
  for (const h of net.hosts) {
    net.queue.at(net.rng() * 500, () => {
      net.start(h)
      if (h.index % stride === 0 && writers.includes(h))
        void h.store.put(`nodes/${h.id}`, { name: `h${h.index}` })
    })
  }
  const everyoneKnown = () =>
    up(net).length === n && net.hosts.every((h) => h.store.list('nodes/').length === writers.length)
  const coldStartMs = await net.runUntil(everyoneKnown, 100, 30_000)
  log(`cold start: ${coldStartMs} ms simulated`)

  // one write, time to reach every host (Serf's convergence model)
  const writer = net.hosts[0] as SimHost
  await writer.store.put('config/probe', { v: 1 })
  const has = () => net.hosts.filter((h) => h.store.get('config/probe') !== undefined).length
  const writeHalfMs = await net.runUntil(() => has() >= n / 2, 5, 10_000)
  const writeAllMs = writeHalfMs + (await net.runUntil(() => has() === n, 5, 10_000))
  log(`one write: half ${writeHalfMs} ms, all ${writeAllMs} ms simulated`)

  // shared state before the partition
  await writer.store.put('config/doomed', 'alive')
  await writer.store.put('config/conflict', 'before')
  await net.run(1000)

  // partition in halves; crash a few hosts on each side first so they come back with stale disks
  const half = Math.floor(n / 2)
  const sideA = net.hosts.slice(0, half)
  const sideB = net.hosts.slice(half)
  const crashed = [...sideA.slice(10, 15), ...sideB.slice(10, 15)]
  for (const h of crashed) h.crash()
  net.partition([sideA.map((h) => h.index), sideB.map((h) => h.index)])
  await (sideA[1] as SimHost).store.delete('config/doomed')
  await (sideA[2] as SimHost).store.put('config/conflict', 'side-a')
  await net.run(50)
  await (sideB[1] as SimHost).store.put('config/conflict', 'side-b')
  for (let i = 0; i < 20; i++) {
    await (sideA[20 + i] as SimHost).store.put(`app/a/${i}`, i)
    await (sideB[20 + i] as SimHost).store.put(`app/b/${i}`, i)
  }
  const [mallory, victim] = writers.filter((h) => h.index >= half && !crashed.includes(h))
  const planted = await attack(mallory as SimHost, victim as SimHost)
  await net.run(2000)

  // heal; crashed hosts restart from their pre-partition disks
  net.heal()
  for (const h of crashed) net.start(h)
  const healMs = await net.runUntil(() => allSame(net), 100, 120_000)
  const converged = healMs >= 0
  log(`heal: ${healMs} ms simulated`)

  // invariants
  if (!converged) violations.push('hosts did not converge after heal')
  const ref = fingerprint(net.hosts[0] as SimHost)
  const differing = net.hosts.filter((h) => fingerprint(h) !== ref).length
  if (differing) violations.push(`${differing} hosts hold a different map`)
  for (const h of net.hosts) {
    if (h.store.get('config/doomed')) violations.push(`h${h.index}: config/doomed resurrected`)
    for (const r of h.store.recordsAfter(new Map())) {
      const v = JSON.stringify(r.value)
      if (planted.some((p) => v.includes(p))) violations.push(`h${h.index}: planted record ${r.key} merged`)
      const owner = r.key.match(/^(nodes|leases|endpoints|health)\/([^/]+)/)?.[2]
      if (owner && owner !== r.owner) violations.push(`h${h.index}: non-owner record ${r.key}`)
    }
  }
  if (planted.length === 0) violations.push('the attack did not run')
  const conflict = net.hosts.map((h) => h.store.get('config/conflict')?.value)
  if (new Set(conflict).size !== 1) violations.push('config/conflict differs between hosts')

  const rejected: Record<string, number> = {}
  for (const h of net.hosts) {
    for (const [k, v] of Object.entries(await h.metrics.figures())) {
      if (k.includes('reject')) rejected[k] = (rejected[k] ?? 0) + v
    }
  }
  const result: SimResult = {
    hosts: n,
    writers: writers.length,
    seed: cfg.seed,
    coldStartMs,
    writeAllMs,
    writeHalfMs,
    healMs,
    healRounds: Math.ceil(healMs / cfg.syncIntervalMs),
    converged,
    violations: violations.slice(0, 20),
    rejected,
    messages: { ...net.stats },
  }
  return result
}
