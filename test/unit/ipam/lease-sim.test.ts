// The lease rules in the deterministic simulator (src/ipam/sim.ts): hosts
// outnumber subnets, agents crash (kernel kept, for up to 2 lease lifetimes)
// and restart, hosts go down, hosts are cut off alone or in halves for up to
// 2.5 lease lifetimes, containers come and go; no two live containers may ever
// share an address, and no subnet may sit on two bridges even for 100 ms. LEASE_SIM_SEEDS (default 8) and
// LEASE_SIM_MINUTES (default 5) widen the search; a failing seed replays.
import t from 'tap'
import { runLeaseSim } from '../../../src/ipam/sim.js'

const seeds = Number(process.env.LEASE_SIM_SEEDS ?? 8)
const minutes = Number(process.env.LEASE_SIM_MINUTES ?? 5)
const firstSeed = Number(process.env.LEASE_SIM_FIRST_SEED ?? 1)

t.test(`${seeds} seeds × ${minutes} simulated minutes: no address on two live containers`, async (t) => {
  const totals = { faults: 0, containers: 0, refused: 0, withdrawn: 0, fenced: 0, lost: 0, overlapMs: 0 }
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    const r = await runLeaseSim({ seed, durationMs: minutes * 60_000 })
    t.same(r.violations, [], `seed ${seed}: no address held twice`)
    t.equal(r.subnetOverlapMs, 0, `seed ${seed}: no subnet on two bridges`)
    totals.faults += Object.values(r.faults).reduce((a, b) => a + b, 0)
    totals.containers += r.containers
    totals.refused += r.refused
    totals.withdrawn += r.counters['plexus_ipam_lease_events_total{event="withdrawn"}'] ?? 0
    totals.fenced += r.counters['plexus_ipam_lease_events_total{event="fenced"}'] ?? 0
    totals.lost += r.counters['plexus_ipam_lease_events_total{event="lost"}'] ?? 0
    totals.overlapMs += r.subnetOverlapMs
  }
  // the run must actually exercise the rules it claims to check
  t.ok(totals.faults >= seeds * minutes * 2, `faults injected: ${totals.faults}`)
  t.ok(totals.containers > seeds * minutes * 50, `containers started: ${totals.containers}`)
  t.ok(totals.withdrawn > 0, `leases withdrawn by their holders: ${totals.withdrawn}`)
  t.ok(totals.fenced > 0, `leases fenced: ${totals.fenced}`)
  t.comment(JSON.stringify(totals))
})
