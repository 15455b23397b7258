import t from 'tap'
import { resolveConfig } from '../../../src/agent/config.js'
import {
  HEALTH_MAX,
  memberState,
  nextHealth,
  SUSPICION_MAX_SCALE,
  suspicionScale,
} from '../../../src/cluster/detector.js'
import { nextDelay } from '../../../src/cluster/dialer.js'
import { seededRng } from '../../../src/cluster/sim/clock.js'
import { DEFAULT_SIM } from '../../../src/cluster/sim/network.js'
import { distance, newVivaldiState, observe, type VivaldiState } from '../../../src/cluster/vivaldi.js'
import { decodeDelta, decodeRequest, encodePull, MAX_GOSSIP_BYTES } from '../../../src/cluster/wire.js'

t.test(
  'failure detector: alive, suspect after 3 s, dead after 6 s (the defaults the README states)',
  async (t) => {
    const cfg = resolveConfig({}, {}).cluster
    t.same(
      {
        suspectAfterMs: cfg.suspectAfterMs,
        deadAfterMs: cfg.deadAfterMs,
        heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      },
      { suspectAfterMs: 3000, deadAfterMs: 6000, heartbeatIntervalMs: 1000 },
      'the agent runs with the documented timers',
    )
    t.equal(memberState(0, cfg), 'alive')
    t.equal(memberState(2999, cfg), 'alive')
    t.equal(memberState(3000, cfg), 'suspect')
    t.equal(memberState(5999, cfg), 'suspect')
    t.equal(memberState(6000, cfg), 'dead')
    t.equal(memberState(6000, cfg, 2), 'suspect', 'a scale stretches both times')
    t.equal(memberState(12_000, cfg, 2), 'dead')
  },
)

t.test(
  "Lifeguard's suspicion: one accuser is judged slowest, K more bring it to the configured times",
  async (t) => {
    t.equal(suspicionScale(1, 5), SUSPICION_MAX_SCALE, '5 members, one accuser: the longest')
    const two = suspicionScale(2, 5)
    t.ok(two > 1 && two < SUSPICION_MAX_SCALE, `two accusers: between (${two.toFixed(2)})`)
    t.equal(suspicionScale(3, 5), 1, 'three (the first and K = 2 more): the configured times')
    t.equal(suspicionScale(4, 5), 1)
    t.equal(suspicionScale(1, 3), SUSPICION_MAX_SCALE, '3 members: one accuser is the longest')
    t.equal(suspicionScale(2, 3), 1, 'and the only other member agreeing is enough')
    t.equal(suspicionScale(1, 2), 1, '2 members: nobody else could confirm, so no stretch')
    t.equal(suspicionScale(1, 1000), SUSPICION_MAX_SCALE)
    t.equal(suspicionScale(3, 1000), 1, 'K stays 2 in a large cluster')
  },
)

t.test(
  "Lifeguard's local health: timeouts and refutations raise it, answers lower it, within bounds",
  async (t) => {
    t.equal(nextHealth(0, 'answered'), 0, 'never below 0')
    t.equal(nextHealth(0, 'timed-out'), 1)
    t.equal(nextHealth(1, 'refuted'), 2)
    t.equal(nextHealth(2, 'answered'), 1)
    let h = 0
    for (let i = 0; i < 20; i++) h = nextHealth(h, 'timed-out')
    t.equal(h, HEALTH_MAX - 1, `at most ${HEALTH_MAX - 1}: a probe waits at most ${HEALTH_MAX} periods`)
  },
)

t.test("the simulator syncs at the agent's default interval", async (t) => {
  t.equal(resolveConfig({}, {}).cluster.syncIntervalMs, 2000, 'the README states a digest exchange every 2 s')
  t.equal(DEFAULT_SIM.syncIntervalMs, 2000, "so heals measured in the simulator are the agent's")
})

t.test('redial backoff doubles with jitter and is capped', async (t) => {
  const cfg = { redialMinMs: 500, redialMaxMs: 30_000 }
  const rng = seededRng(3)
  for (let f = 1; f < 12; f++) {
    const d = nextDelay(f, cfg, rng)
    const base = Math.min(30_000, 500 * 2 ** f)
    t.ok(d >= base / 2 && d <= base, `failure ${f}: ${d} ms within [${base / 2}, ${base}]`)
  }
})

t.test('vivaldi converges to the true RTTs of a small network', async (t) => {
  // four hosts on a line: 10 ms apart, plus 1 ms access latency each
  const pos = [0, 10, 20, 30]
  const rtt = (a: number, b: number) => Math.abs((pos[a] as number) - (pos[b] as number)) + 2
  const rng = seededRng(42)
  let s: VivaldiState[] = pos.map(() => newVivaldiState())
  for (let round = 0; round < 2000; round++) {
    const a = Math.floor(rng() * 4)
    const b = (a + 1 + Math.floor(rng() * 3)) % 4
    s = s.map((st, i) => (i === a ? observe(st, `p${b}`, (s[b] as VivaldiState).coord, rtt(a, b), rng) : st))
  }
  for (let a = 0; a < 4; a++) {
    for (let b = a + 1; b < 4; b++) {
      const est = distance((s[a] as VivaldiState).coord, (s[b] as VivaldiState).coord) * 1000
      t.ok(
        Math.abs(est - rtt(a, b)) / rtt(a, b) < 0.25,
        `h${a}-h${b}: estimate ${est.toFixed(1)} ms vs ${rtt(a, b)} ms`,
      )
    }
  }
  const bad = observe(s[0] as VivaldiState, 'p1', (s[1] as VivaldiState).coord, -5, rng)
  t.equal(bad, s[0], 'a negative RTT is ignored')
})

t.test('wire: hostile input is refused with PLX_CLUSTER_BAD_MESSAGE', async (t) => {
  const bytes = (x: string) => new TextEncoder().encode(x)
  t.throws(() => decodeDelta(new Uint8Array(MAX_GOSSIP_BYTES + 1)), { code: 'PLX_CLUSTER_BAD_MESSAGE' })
  t.throws(() => decodeDelta(bytes('{"t":"delta"')), { code: 'PLX_CLUSTER_BAD_MESSAGE' })
  t.throws(() => decodeDelta(bytes('{"t":"delta","records":{}}')), { code: 'PLX_CLUSTER_BAD_MESSAGE' })
  t.throws(() => decodeDelta(new Uint8Array([0xff, 0xfe])), { code: 'PLX_CLUSTER_BAD_MESSAGE' })
  t.throws(() => decodeRequest(bytes('{"t":"pull","digest":[["x",-1,0]]}')), {
    code: 'PLX_CLUSTER_BAD_MESSAGE',
  })
  t.throws(() => decodeRequest(bytes('{"t":"nope"}')), { code: 'PLX_CLUSTER_BAD_MESSAGE' })
  const d = new Map([['12D3KooWX', { wall: 5, logical: 1 }]])
  const req = decodeRequest(encodePull(d))
  t.same(req.t === 'pull' && [...req.digest], [...d])
})
