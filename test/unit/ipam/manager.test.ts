// The lease manager against the real store (LocalStore with real Ed25519
// signatures). Several hosts' stores are joined by a test transport that
// forwards every local write to the other stores after a delay (gossip) and
// can be cut (partition) and healed (sync: each side merges the other's records).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { NETWORK_CONFIG_KEY } from '../../../src/ipam/config.js'
import { type CurrentLease, LeaseManager, type LeaseManagerInit } from '../../../src/ipam/manager.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { LocalStore } from '../../../src/store/store.js'

const TTL = 3000
const SETTLE = 250
const ONE_SUBNET = {
  Network: '10.99.0.0/24',
  SubnetLen: 26,
  SubnetMin: '10.99.0.64',
  SubnetMax: '10.99.0.64',
}
const TWO_SUBNETS = { ...ONE_SUBNET, SubnetMax: '10.99.0.128' }

const LEASE_EVENTS = 'plexus_ipam_lease_events_total'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(t: Test, what: string, fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > end) {
      t.fail(`timed out waiting for ${what}`)
      return
    }
    await sleep(20)
  }
}

interface Host {
  name: string
  store: LocalStore
  metrics: Metrics
  runDir: string
  lm?: LeaseManager
  events: string[]
  sweeper: NodeJS.Timeout
}

class Net {
  hosts: Host[] = []
  cut = false
  /** hosts cut off from everyone else */
  readonly off = new Set<Host>()
  constructor(
    readonly t: Test,
    readonly latencyMs = 20,
  ) {}

  async host(name: string): Promise<Host> {
    const signer = createSigner(await generateKeyPair('Ed25519'))
    const metrics = new Metrics()
    const store = new LocalStore({ signer, verify: verifyRecordSignature, metrics })
    const runDir = await mkdtemp(join(tmpdir(), `plexus-lm-${name}-`))
    // The store only expires records visibly (watch events) when swept; the cluster does this on a timer.
    const h: Host = {
      name,
      store,
      metrics,
      runDir,
      events: [],
      sweeper: setInterval(() => store.sweep(), 50),
    }
    store.onLocalWrite((r) => {
      for (const o of this.hosts) {
        if (o !== h)
          setTimeout(
            () => !this.cut && !this.off.has(o) && !this.off.has(h) && o.store.merge([r]),
            this.latencyMs,
          )
      }
    })
    this.hosts.push(h)
    this.t.teardown(async () => {
      clearInterval(h.sweeper)
      await h.lm?.stop()
      await rm(runDir, { recursive: true, force: true })
    })
    return h
  }

  /** Anti-entropy after a partition heals: everyone merges everyone's records. */
  heal(): void {
    this.cut = false
    this.off.clear()
    for (const a of this.hosts)
      for (const b of this.hosts) if (a !== b) b.store.merge(a.store.recordsAfter(new Map()))
  }

  start(
    h: Host,
    init: Partial<LeaseManagerInit> = {},
    address = `192.0.2.${11 + this.hosts.indexOf(h)}`,
  ): LeaseManager {
    const lm = new LeaseManager(
      {
        store: h.store,
        config: { name: h.name, runDir: h.runDir },
        logger: pino({ level: 'silent' }),
        metrics: h.metrics,
        shutdown: new AbortController().signal,
      },
      {
        ttlMs: TTL,
        settleMs: SETTLE,
        retryMs: 100,
        // short enough for a 3 s lease (leaseTiming checks the relation)
        renewMs: 500,
        driftMs: 100,
        confirmDelayMs: 200,
        contactMs: 500,
        seed: false,
        underlay: async () => ({ address, ifname: 'eth0', mtu: 1500 }),
        ...init,
      },
    )
    lm.on('acquired', (l: CurrentLease) => h.events.push(`acquired ${l.subnet}`))
    lm.on('lost', ({ previous }) => h.events.push(`lost ${previous.subnet}`))
    lm.on('changed', ({ current }) => h.events.push(`changed ${current.subnet}`))
    h.lm = lm
    void lm.start()
    return lm
  }
}

t.test('seeds the network config, claims, settles, writes subnet.env', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  const lm = net.start(h, { seed: { Network: '10.99.0.0/16' } })
  t.equal(lm.status().state, 'waiting-config')
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  const cur = lm.current() as CurrentLease
  t.match(cur, {
    gateway: /^10\.99\.\d+\.1$/,
    mtu: 1450,
    publicIp: '192.0.2.11',
    backend: { type: 'vxlan', vni: 1 },
  })
  t.same(h.events, [`acquired ${cur.subnet}`])
  t.match(h.store.get(NETWORK_CONFIG_KEY)?.value, { Network: '10.99.0.0/16', SubnetLen: 24 })
  const env = await readFile(join(h.runDir, 'subnet.env'), 'utf8')
  t.equal(
    env,
    `FLANNEL_NETWORK=10.99.0.0/16\nFLANNEL_SUBNET=${cur.gateway}/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  )
  const rec = h.store.get(`leases/${h.store.self}`)
  t.equal(rec?.ttlMs, TTL)
  t.match(rec?.value, { subnet: cur.subnet, hostname: 'h1', publicIp: '192.0.2.11' })
})

t.test('renews well before expiry and keeps claimedAt', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  await h.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
  const lm = net.start(h)
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  const first = h.store.get(`leases/${h.store.self}`)
  await sleep(TTL * 1.5)
  const later = h.store.get(`leases/${h.store.self}`)
  t.ok(later && first && later.version.wall > first.version.wall, 'rewritten')
  t.match(later?.value, { claimedAt: (first?.value as { claimedAt: number } | undefined)?.claimedAt })
  t.ok((await h.metrics.value(LEASE_EVENTS, { event: 'renewed' })) >= 2)
  t.same(h.events, ['acquired 10.99.0.64/26'], 'no lost/acquired churn')
})

t.test('two hosts start at the same instant with one free subnet: exactly one gets it', async (t) => {
  const net = new Net(t)
  const [a, b] = [await net.host('h1'), await net.host('h2')]
  await a.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
  b.store.merge(a.store.recordsAfter(new Map()))
  net.start(a)
  net.start(b)
  await until(t, 'one acquired, one without', () => {
    const states = [a.lm?.status().state, b.lm?.status().state].sort()
    return states[0] === 'acquired' && states[1] === 'no-subnet'
  })
  const [winner, loser] = a.lm?.status().state === 'acquired' ? [a, b] : [b, a]
  t.same(winner.events, ['acquired 10.99.0.64/26'])
  t.same(loser.events, [], 'the loser never held it')
  t.match(
    loser.lm?.status().reason,
    /^no free subnet: all 1 \/26 subnet from 10\.99\.0\.64 to 10\.99\.0\.64 in 10\.99\.0\.0\/24 are held \(10\.99\.0\.64\/26 h[12]\)/,
  )
  t.ok((await loser.metrics.value('plexus_ipam_no_free_subnet_total')) >= 1)
  await sleep(100)
  t.equal(loser.store.get(`leases/${loser.store.self}`), undefined, 'the losing claim was withdrawn')
  t.equal(winner.store.get(`leases/${loser.store.self}`), undefined)
  t.same(winner.lm?.view()?.invalid, [])
})

t.test('restart keeps the same subnet and claim age', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  await h.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
  const lm = net.start(h, { random: () => 0.99 })
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  const before = lm.current() as CurrentLease
  await lm.stop()
  const again = net.start(h, { random: () => 0 })
  await until(t, 'acquired again', () => again.status().state === 'acquired')
  t.equal(again.current()?.subnet, before.subnet)
  t.equal(again.current()?.claimedAt, before.claimedAt)
})

t.test("a dead host's lease expires and its subnet becomes free", async (t) => {
  const net = new Net(t)
  const [a, b] = [await net.host('h1'), await net.host('h2')]
  await a.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
  const la = net.start(a)
  await until(t, 'h1 acquired', () => la.status().state === 'acquired')
  const lb = net.start(b)
  await until(t, 'h2 waits', () => lb.status().state === 'no-subnet')
  const died = Date.now()
  await la.stop() // dead: no more renewals
  await until(t, 'h2 acquired', () => lb.status().state === 'acquired', TTL * 3)
  t.ok(Date.now() - died >= TTL / 2, 'not before the lease expired')
  t.equal(lb.current()?.subnet, '10.99.0.64/26')
})

t.test('a host returning after its lease was reclaimed moves instead of stealing it back', async (t) => {
  const net = new Net(t)
  const [a, b] = [await net.host('h1'), await net.host('h2')]
  await a.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
  const la = net.start(a, { random: () => 0 })
  await until(t, 'h1 acquired', () => la.status().state === 'acquired')
  t.equal(la.current()?.subnet, '10.99.0.64/26')
  await la.stop()
  net.cut = true // h1 is away; its lease expires while h2 takes the subnet
  await sleep(TTL + 100)
  const lb = net.start(b, { random: () => 0 })
  await until(t, 'h2 acquired', () => lb.status().state === 'acquired')
  t.equal(lb.current()?.subnet, '10.99.0.64/26', 'h2 took the expired subnet')
  // h1 returns with its old subnet.env, before sync has told it about h2's lease
  const la2 = net.start(a, { random: () => 0 })
  await sleep(SETTLE / 3)
  net.heal()
  await until(
    t,
    'h1 acquired again',
    () => la2.status().state === 'acquired' && la2.current()?.subnet === '10.99.0.128/26',
  )
  t.same(b.events, ['acquired 10.99.0.64/26'], 'h2 never lost its subnet')
  t.notOk(a.events.slice(1).includes('acquired 10.99.0.64/26'), 'h1 never re-acquired its old subnet')
})

/** What the cluster service does: nodes/<self> every 100 ms, with a node TTL much shorter than the lease. */
function heartbeats(t: Test, hosts: Host[]): Map<Host, NodeJS.Timeout> {
  const beats = new Map<Host, NodeJS.Timeout>()
  for (const h of hosts)
    beats.set(
      h,
      setInterval(() => void h.store.put(`nodes/${h.store.self}`, { name: h.name }, { ttlMs: 500 }), 100),
    )
  t.teardown(() => {
    for (const b of beats.values()) clearInterval(b)
  })
  return beats
}

t.test(
  "with heartbeats: a dead host's lease outlives its node record, then the majority reclaims it, and the host moves when it returns",
  async (t) => {
    const net = new Net(t)
    const [a, b, c] = [await net.host('h1'), await net.host('h2'), await net.host('h3')]
    const beats = heartbeats(t, [a, b, c])
    await a.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
    const la = net.start(a, { random: () => 0 })
    await until(t, 'h1 acquired', () => la.status().state === 'acquired')
    await sleep(100)
    const lc = net.start(c, { random: () => 0 })
    await until(t, 'h3 acquired the other subnet', () => lc.current()?.subnet === '10.99.0.128/26')
    await la.stop()
    clearInterval(beats.get(a)) // h1 dies: neither its heartbeat nor its lease is renewed
    const died = Date.now()
    const lb = net.start(b, { random: () => 0 })
    await sleep(1000)
    t.equal(b.store.get(`nodes/${a.store.self}`), undefined, "h1's node record has lapsed")
    t.ok(b.store.get(`leases/${a.store.self}`), 'its lease is still there: no datapath changes')
    t.equal(lb.status().state, 'no-subnet')
    await until(t, 'h2 acquired', () => lb.status().state === 'acquired', TTL * 3)
    t.ok(Date.now() - died >= TTL - 600, 'not before the lease expired')
    t.equal(
      lb.current()?.subnet,
      '10.99.0.64/26',
      'h2 (with h3, a majority) took the subnet of the dead host',
    )
    beats.set(a, heartbeats(t, [a]).get(a) as NodeJS.Timeout)
    await sleep(300)
    const la2 = net.start(a, { random: () => 0 })
    await until(t, 'h1 has no subnet to take back', () => la2.status().state === 'no-subnet')
    t.same(b.events, ['acquired 10.99.0.64/26'], 'h2 never lost its subnet')
  },
)

t.test(
  'an isolated holder fences at half the lease and withdraws before the majority may reclaim its subnet',
  async (t) => {
    const net = new Net(t)
    const [a, b, c] = [await net.host('h1'), await net.host('h2'), await net.host('h3')]
    heartbeats(t, [a, b, c])
    await a.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
    const la = net.start(a, { random: () => 0 })
    await until(t, 'h1 acquired', () => la.status().state === 'acquired')
    const lb = net.start(b, { random: () => 0 })
    await until(t, 'h2 acquired', () => lb.status().state === 'acquired')
    const lc = net.start(c, { random: () => 0 })
    await until(t, 'h3 waits: the network is exhausted', () => lc.status().state === 'no-subnet')
    const subnet = la.current()?.subnet as string
    const gone: number[] = []
    la.on('lost', () => gone.push(Date.now()))
    let taken = 0
    lc.on('acquired', () => {
      taken = Date.now()
    })
    net.off.add(a) // h1 loses the underlay
    const cut = Date.now()
    await until(t, 'h1 fenced', () => la.status().state === 'fenced', TTL)
    t.ok(Date.now() - cut < TTL, 'fenced within the lease')
    t.ok(la.current(), 'a fenced holder still holds its subnet (running containers keep working)')
    t.match(la.status(), { confirmedAt: String, fenceAt: String, withdrawAt: String })
    await until(t, 'h1 withdrew', () => gone.length === 1, TTL * 2)
    t.equal(la.current(), undefined)
    t.same(la.withdrawn(), { base: (la.withdrawn() as { base: number }).base, prefix: 26 })
    t.equal(await a.metrics.value(LEASE_EVENTS, { event: 'withdrawn' }), 1)
    t.equal(a.store.get(`leases/${a.store.self}`), undefined, 'its record is deleted (a tombstone)')
    await until(t, 'h3 took the subnet', () => lc.current()?.subnet === subnet, TTL * 2)
    t.ok(taken > (gone[0] as number), `withdrawn ${taken - (gone[0] as number)} ms before it was taken`)
    await sleep(200)
    t.equal(la.status().state, 'isolated', 'cut off from the majority, h1 makes no new claim')
    net.heal()
    await until(t, 'h1 back, no free subnet', () => la.status().state === 'no-subnet')
    t.equal(lc.current()?.subnet, subnet, 'h3 keeps the subnet after the heal')
    t.same(c.events, [`acquired ${subnet}`])
  },
)

t.test('a restart within the lease resumes it at once: no settle, no waiting for peers', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  await h.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
  const lm = net.start(h)
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  const before = lm.current() as CurrentLease
  await lm.stop()
  const started = Date.now()
  const again = net.start(h, { settleMs: 5000, joined: () => false })
  await until(t, 'resumed', () => again.status().state === 'acquired', 1000)
  t.ok(Date.now() - started < 1000, `resumed in ${Date.now() - started} ms (settle is 5 s)`)
  t.equal(again.current()?.claimedAt, before.claimedAt, 'the same claim continues')
})

t.test(
  'a lone host counts its claim after the settle period; one that knows a member waits to hear from it',
  async (t) => {
    // δ = 3 s: the majority wait (2·δ after the claim) is far longer than the settle period
    const slow = { ttlMs: 60_000, confirmDelayMs: 3000 }
    const net = new Net(t)
    const [a, b] = [await net.host('h1'), await net.host('h2')]
    await a.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
    const started = Date.now()
    const alone = net.start(a, slow)
    await until(t, 'the lone host acquired', () => alone.status().state === 'acquired', 6000)
    t.ok(Date.now() - started < 6000, `acquired in ${Date.now() - started} ms, before 2·δ (6 s)`)
    await alone.stop()

    // h2 holds h1's node record (written before its claim, and not renewed since): h1 is a member to hear from
    await b.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
    await a.store.put(`nodes/${a.store.self}`, { name: 'h1' })
    b.store.merge(a.store.recordsAfter(new Map()))
    const member = net.start(b, slow)
    await sleep(SETTLE + 1000)
    t.equal(member.status().state, 'settling', 'still settling after the settle period')
    t.match(member.status().reason, /majority of the cluster has heard of the claim/)
  },
)

t.test('a conflict found after a partition heals: the younger claim moves', async (t) => {
  const net = new Net(t)
  const [a, b] = [await net.host('h1'), await net.host('h2')]
  await a.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
  b.store.merge(a.store.recordsAfter(new Map()))
  net.cut = true
  const la = net.start(a, { random: () => 0 })
  await until(t, 'h1 acquired', () => la.status().state === 'acquired')
  await sleep(5)
  const lb = net.start(b, { random: () => 0 })
  await until(t, 'h2 acquired', () => lb.status().state === 'acquired')
  t.equal(la.current()?.subnet, lb.current()?.subnet, 'both took the same subnet while apart')
  net.heal()
  await until(t, 'h2 moved', () => lb.current()?.subnet === '10.99.0.128/26')
  t.same(b.events, ['acquired 10.99.0.64/26', 'lost 10.99.0.64/26', 'acquired 10.99.0.128/26'])
  t.same(a.events, ['acquired 10.99.0.64/26'])
  t.equal(await b.metrics.value(LEASE_EVENTS, { event: 'lost' }), 1)
})

t.test('the subnet of the last subnet.env is preferred', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  await h.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
  await writeFile(
    join(h.runDir, 'subnet.env'),
    'FLANNEL_NETWORK=10.99.0.0/24\nFLANNEL_SUBNET=10.99.0.129/26\n',
  )
  const lm = net.start(h, { random: () => 0 })
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  t.equal(lm.current()?.subnet, '10.99.0.128/26')
})

t.test(
  'hostile leases are ignored, counted and reported; a bad network config keeps the last good one',
  async (t) => {
    const net = new Net(t)
    const [a, evil] = [await net.host('h1'), await net.host('evil')]
    await a.store.put(NETWORK_CONFIG_KEY, TWO_SUBNETS)
    const la = net.start(a, { random: () => 0 })
    await until(t, 'acquired', () => la.status().state === 'acquired')
    await evil.store.put(
      `leases/${evil.store.self}`,
      {
        subnet: '10.99.0.64/26',
        publicIp: '10.99.0.70',
        hostname: 'evil',
        backend: { type: 'vxlan' },
        claimedAt: 1,
      },
      { ttlMs: 60_000 },
    )
    await until(
      t,
      'counted',
      async () =>
        (await a.metrics.value('plexus_ipam_invalid_leases_total', { kind: 'public-ip-in-network' })) === 1,
    )
    t.match(la.view()?.invalid, [
      { kind: 'public-ip-in-network', reason: /publicIp 10\.99\.0\.70 is inside the cluster network/ },
    ])
    t.equal(la.current()?.subnet, '10.99.0.64/26', 'an invalid lease, even an old one, takes nothing')
    await evil.store.put(NETWORK_CONFIG_KEY, { Network: 'bogus' })
    await until(
      t,
      'bad config counted',
      async () => (await a.metrics.value('plexus_ipam_invalid_network_config_total')) === 1,
    )
    t.equal(la.network()?.Network, '10.99.0.0/24')
    t.same(a.events, ['acquired 10.99.0.64/26'])
  },
)

t.test('backend data and config changes republish without a new claim', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  await h.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
  const lm = net.start(h)
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  const claimedAt = lm.current()?.claimedAt
  await lm.setBackendData({ vtepMac: '02:aa:bb:cc:dd:ee' })
  await until(t, 'changed', () => lm.current()?.backend.vtepMac === '02:aa:bb:cc:dd:ee')
  t.match(h.store.get(`leases/${h.store.self}`)?.value, {
    backend: { type: 'vxlan', vni: 1, vtepMac: '02:aa:bb:cc:dd:ee' },
    claimedAt,
  })
  await h.store.put(NETWORK_CONFIG_KEY, { ...ONE_SUBNET, Backend: { MTU: 1400 } })
  await until(t, 'mtu changed', () => lm.current()?.mtu === 1400)
  t.match(await readFile(join(h.runDir, 'subnet.env'), 'utf8'), /FLANNEL_MTU=1400/)
  t.same(h.events, ['acquired 10.99.0.64/26', 'changed 10.99.0.64/26', 'changed 10.99.0.64/26'])
  t.equal(lm.current()?.claimedAt, claimedAt)
})

t.test('a bad seed is refused at construction', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  t.throws(() => net.start(h, { seed: { SubnetLen: 40 } }), { code: 'PLX_IPAM_CONFIG_INVALID' })
})

t.test('a host with cluster peers neither seeds nor claims before it has heard from one', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  let joined = false
  const lm = net.start(h, { seed: ONE_SUBNET, joined: () => joined })
  await sleep(SETTLE * 2)
  t.equal(lm.status().state, 'joining')
  t.equal(h.store.get(NETWORK_CONFIG_KEY), undefined, 'no config seeded yet')
  joined = true
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  const h2 = await net.host('h2')
  const alone = net.start(h2, { seed: ONE_SUBNET, joined: () => false, joinTimeoutMs: SETTLE })
  await until(t, 'h2 went ahead alone after the join timeout', () => alone.status().state === 'no-subnet')
})

t.test('a forced network change moves the lease into the new network', async (t) => {
  const net = new Net(t)
  const h = await net.host('h1')
  await h.store.put(NETWORK_CONFIG_KEY, ONE_SUBNET)
  const lm = net.start(h)
  await until(t, 'acquired', () => lm.status().state === 'acquired')
  await h.store.put(NETWORK_CONFIG_KEY, { Network: '10.98.0.0/24', SubnetLen: 26 })
  await until(t, 'moved', () => lm.current()?.subnet.startsWith('10.98.0.') === true)
  t.match(h.events, [
    'acquired 10.99.0.64/26',
    'lost 10.99.0.64/26',
    /^acquired 10\.98\.0\.(64|128|192)\/26$/,
  ])
  t.match(await readFile(join(h.runDir, 'subnet.env'), 'utf8'), /^FLANNEL_NETWORK=10\.98\.0\.0\/24\n/)
})
