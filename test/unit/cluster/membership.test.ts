import t from 'tap'
import { resolveConfig } from '../../../src/agent/config.js'
import { Membership } from '../../../src/cluster/membership.js'
import { EventQueue, seededRng } from '../../../src/cluster/sim/clock.js'
import { createLogger } from '../../../src/lib/log.js'
import { NODE_PREFIX } from '../../../src/store/types.js'
import { newStore } from '../store/helpers.js'

// Membership on a virtual clock: three or four hosts whose stores exchange node records
// every 50 ms (instant gossip), and pings that answer in 5 ms (or `slow.ms`) unless the link
// is cut or the host hung (no answer: the probe times out) or is down (a crashed agent: the
// connection is refused at once).

const cfg = resolveConfig({}, {}).cluster
const START = 1_700_000_000_000

async function cluster(n: number, opts: { legacy?: boolean } = {}) {
  const q = new EventQueue(START)
  const clock = {
    get t() {
      return q.now()
    },
  }
  const cut = new Set<string>() // "from>to": pings from → to go unanswered
  const down = new Set<string>()
  const hung = new Set<string>()
  const slow = { ms: 5 }
  /** gossip delay: a record reaches the others this long after it was written (a loaded cluster) */
  const lag = { ms: 0 }
  const late = new Set<string>() // hosts whose own loop is late: their failed pings settle after two periods
  const resets: string[] = [] // "from>to": connections a prober dropped
  const hosts = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const { store } = await newStore({ now: clock })
      return { name: `h${i + 1}`, store, writes: 0, m: undefined as Membership | undefined }
    }),
  )
  const byId = new Map(hosts.map((h) => [h.store.self, h]))
  for (const h of hosts) {
    h.store.watch(`${NODE_PREFIX}${h.store.self}`, () => h.writes++)
    h.m = new Membership({
      store: h.store,
      sched: q.scheduler(),
      rng: seededRng(hosts.indexOf(h) + 1),
      logger: createLogger({ level: 'fatal', host: h.name }),
      cfg,
      describe: () => ({ name: h.name, address: '192.0.2.1', labels: {} }),
      ping: (peer, timeoutMs) =>
        new Promise((resolve, reject) => {
          if (down.has(peer)) {
            q.at(1, () => {
              q.settled()
              reject(new Error('connection refused'))
            })
            return
          }
          const lost = hung.has(peer) || cut.has(`${h.name}>${byId.get(peer)?.name}`) || slow.ms >= timeoutMs
          q.at(lost ? (late.has(h.name) ? 2 * timeoutMs : timeoutMs) : slow.ms, () => {
            q.settled()
            lost ? reject(new Error('no answer')) : resolve(undefined)
          })
        }),
      reset: (peer) => resets.push(`${h.name}>${byId.get(peer)?.name}`),
      connectedPeers: () => [],
    })
  }
  // instant gossip between the hosts that are up
  q.scheduler().every(50, () => {
    const upHosts = hosts.filter((h) => !down.has(h.store.self) && !hung.has(h.store.self))
    const records = upHosts.flatMap((h) =>
      h.store
        .listHeld(NODE_PREFIX)
        .filter((r) => r.owner === h.store.self && r.version.wall <= q.now() - lag.ms),
    )
    for (const h of upHosts) h.store.merge(records)
  })
  if (opts.legacy) {
    // an agent of an earlier release: a heartbeat a second, no suspects map
    const { store } = await newStore({ now: clock })
    q.scheduler().every(cfg.heartbeatIntervalMs, () => {
      void store.put(
        `${NODE_PREFIX}${store.self}`,
        { name: 'old', address: '192.0.2.9' },
        { ttlMs: cfg.nodeTtlMs },
      )
      for (const h of hosts) h.store.merge(store.listHeld(NODE_PREFIX).filter((r) => r.owner === store.self))
    })
  }
  for (const h of hosts) h.m?.start()
  const stateOf = (observer: (typeof hosts)[number], target: (typeof hosts)[number]) =>
    observer.m?.hosts().find((x) => x.name === target.name)?.state
  return { q, hosts, cut, down, hung, slow, lag, late, resets, stateOf }
}

t.test(
  'an idle cluster rewrites node records every refresh, not every period, and all stay alive',
  async (t) => {
    const { q, hosts, stateOf } = await cluster(3)
    await q.runUntil(START + 2000)
    const before = hosts.map((h) => h.writes)
    const seen = new Set<string>()
    for (let s = 0; s < 60; s++) {
      await q.runUntil(q.now() + 1000)
      for (const a of hosts) for (const b of hosts) seen.add(stateOf(a, b) ?? 'missing')
    }
    t.same([...seen], ['alive'], 'every host sees every host alive for a minute')
    for (const [i, h] of hosts.entries()) {
      const writes = h.writes - (before[i] ?? 0)
      t.ok(
        writes >= 5 && writes <= 7,
        `${h.name} wrote its node record ${writes} times in 60 s (refresh 10 s)`,
      )
    }
  },
)

/**
 * Four hosts; h3 crashes (down: its connections are refused) or hangs (its probes time out) 5 s in.
 * The others' view of h3 every 100 ms for `ms`, their local health, and the suspicions of h3 they
 * published (`since`, ms from the loss).
 */
async function loseH3(how: 'down' | 'hung', ms: number) {
  const c = await cluster(4)
  await c.q.runUntil(START + 5000)
  const [h1, h2, h3, h4] = c.hosts as [
    (typeof c.hosts)[0],
    (typeof c.hosts)[0],
    (typeof c.hosts)[0],
    (typeof c.hosts)[0],
  ]
  const others = [h1, h2, h4]
  const lost = c.q.now()
  c[how].add(h3.store.self)
  h3.m?.stop()
  const timeline: { at: number; host: string; state?: string }[] = []
  const health = new Set<number>()
  while (c.q.now() < lost + ms) {
    await c.q.runUntil(c.q.now() + 100)
    for (const o of others) {
      timeline.push({ at: c.q.now() - lost, host: o.name, state: c.stateOf(o, h3) })
      health.add(o.m?.localHealth ?? -1)
    }
  }
  type Doubts = { suspects?: Record<string, { since: number }> }
  const sinces = others.flatMap((o) => {
    const d = (o.store.get(`${NODE_PREFIX}${o.store.self}`)?.value as Doubts | undefined)?.suspects?.[
      h3.store.self
    ]
    return d ? [d.since - lost] : []
  })
  const first = (st: string) => Math.min(...timeline.filter((v) => v.state === st).map((v) => v.at))
  const last = (st: string) => Math.max(...timeline.filter((v) => v.state === st).map((v) => v.at))
  return { ...c, h1, h2, h3, h4, others, sinces, S: Math.min(...sinces), first, last, health }
}

t.test(
  'a crashed agent (connections refused): suspect 3 s and dead 6 s after the first missed probe, everywhere',
  async (t) => {
    const { h1, h2, h3, others, sinces, S, first, last, stateOf, resets } = await loseH3('down', 12_000)
    t.ok(sinces.length > 0, 'the others published a suspicion of h3')
    t.ok(S >= -cfg.heartbeatIntervalMs && S <= 2000, `first missed probe ${S} ms from the crash`)
    // states are read every 100 ms and records spread within 50 ms
    t.ok(first('suspect') >= S + 3000, `never suspect before 3 s (${first('suspect') - S} ms)`)
    t.ok(
      last('alive') < S + 3000 + 150,
      `suspect everywhere by 3 s (+ delivery): last alive ${last('alive') - S} ms`,
    )
    t.ok(first('dead') >= S + 6000, `never dead before 6 s (${first('dead') - S} ms)`)
    t.ok(
      last('suspect') < S + 6000 + 150,
      `dead everywhere by 6 s (+ delivery): last suspect ${last('suspect') - S} ms`,
    )
    for (const o of others) t.equal(stateOf(o, h3), 'dead', `${o.name} sees h3 dead`)
    t.equal(stateOf(h1, h2), 'alive', 'the others stay alive')
    t.same(resets, [], 'a refused probe had no connection to drop')
  },
)

t.test('a host one prober cannot reach refutes the suspicion and is never seen suspect', async (t) => {
  const { q, hosts, cut, stateOf } = await cluster(3)
  await q.runUntil(START + 5000)
  const [h1, h2] = hosts as [(typeof hosts)[0], (typeof hosts)[0]]
  cut.add('h1>h2')
  const seen = new Set<string>()
  for (let s = 0; s < 30; s++) {
    await q.runUntil(q.now() + 500)
    for (const o of hosts) seen.add(stateOf(o, h2) ?? 'missing')
  }
  t.same([...seen], ['alive'], 'h2 alive on every host for 15 s')
  const doubts = h1.store.get(`${NODE_PREFIX}${h1.store.self}`)?.value
  t.ok(JSON.stringify(doubts).includes(h2.store.self), "h1's record names h2 as unanswered")
  cut.clear()
  await q.runUntil(q.now() + 5000)
  t.notOk(
    JSON.stringify(h1.store.get(`${NODE_PREFIX}${h1.store.self}`)?.value).includes(h2.store.self),
    'an answered probe withdraws the suspicion',
  )
})

t.test(
  'while an agent of an earlier release is a member, the node record is written every period',
  async (t) => {
    const { q, hosts } = await cluster(2, { legacy: true })
    await q.runUntil(START + 3000)
    const before = hosts[0]?.writes ?? 0
    await q.runUntil(q.now() + 10_000)
    const writes = (hosts[0]?.writes ?? 0) - before
    t.ok(writes >= 9, `h1 wrote ${writes} times in 10 s, a heartbeat a second for the old agent's detector`)
  },
)

t.test('a prober whose own loop runs late accuses nobody', async (t) => {
  const { q, hosts, cut, late, resets } = await cluster(3)
  await q.runUntil(START + 5000)
  const [h1, h2] = hosts as [(typeof hosts)[0], (typeof hosts)[0]]
  late.add('h1')
  cut.add('h1>h2')
  await q.runUntil(q.now() + 15_000)
  const doubts = h1.store.get(`${NODE_PREFIX}${h1.store.self}`)?.value
  t.notOk(JSON.stringify(doubts).includes(h2.store.self), 'misses timed by a late timer raise no suspicion')
  t.same(resets, [], 'nor drop a connection')
  late.clear()
  await q.runUntil(q.now() + 5000)
  t.ok(
    JSON.stringify(h1.store.get(`${NODE_PREFIX}${h1.store.self}`)?.value).includes(h2.store.self),
    'the same misses on time do',
  )
  // Lifeguard stretches the timeouts of a prober whose probes time out: its third probe is sent
  // suspectAfterMs after the first and times out a few seconds later
  await q.runUntil(q.now() + 5000)
  t.ok(resets.length > 0, `and h1 drops its connection to h2 (${resets.length} times in 10 s)`)
  t.same([...new Set(resets)], ['h1>h2'], 'to h2 only')
})

t.test(
  "a host that hangs (probes time out): Lifeguard's longer timeouts delay its suspicion by a probe, and it is dead everywhere by 6 s from the first missed probe plus that",
  async (t) => {
    const { h3, others, sinces, S, first, last, health, stateOf, resets } = await loseH3('hung', 15_000)
    t.equal(sinces.length, 3, 'every other host accuses h3')
    t.ok(Math.max(...health) >= 1, `a timed-out probe raised the prober's local health (seen ${[...health]})`)
    t.ok(first('suspect') >= S + 3000, `never suspect before 3 s (${first('suspect') - S} ms)`)
    t.ok(first('dead') >= S + 6000, `never dead before 6 s (${first('dead') - S} ms)`)
    // the retry waits two periods, not one: a period more than a refused connection
    t.ok(
      last('suspect') < S + 6000 + cfg.heartbeatIntervalMs + 150,
      `dead everywhere by 7 s (+ delivery): last suspect ${last('suspect') - S} ms`,
    )
    for (const o of others) t.equal(stateOf(o, h3), 'dead', `${o.name} sees h3 dead`)
    t.same(
      [...new Set(resets)].sort(),
      others.map((o) => `${o.name}>h3`),
      'each of the others dropped its connection to h3 (unanswered as long as it takes to suspect), and no other',
    )
  },
)

t.test(
  'a loaded cluster (answers take longer than a period, gossip 2 s) judges nobody suspect',
  async (t) => {
    const { q, hosts, slow, lag, resets, stateOf } = await cluster(4)
    await q.runUntil(START + 5000)
    // a suspicion reaches its subject 2 s late and its refutation comes back 2 s later still:
    // past suspectAfterMs, so only not accusing keeps everybody alive
    slow.ms = 1500
    lag.ms = 2000
    const seen = new Set<string>()
    const health = new Set<number>()
    for (let s = 0; s < 120; s++) {
      await q.runUntil(q.now() + 500)
      for (const a of hosts) {
        health.add(a.m?.localHealth ?? -1)
        for (const b of hosts) seen.add(stateOf(a, b) ?? 'missing')
      }
    }
    t.same([...seen], ['alive'], 'every host sees every host alive for a minute')
    t.ok(
      Math.max(...health) >= 1,
      `probes timed out and stretched the timeout (local health seen: ${[...health]})`,
    )
    t.same(resets, [], 'and kept every connection: a slow peer is not a half-open one')
    slow.ms = 5
    lag.ms = 0
    await q.runUntil(q.now() + 10_000)
    t.same(
      hosts.map((h) => h.m?.localHealth),
      [0, 0, 0, 0],
      'answers in time bring local health back to 0',
    )
  },
)
