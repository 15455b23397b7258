import t from 'tap'
import {
  FAULT_KINDS,
  kernelViolations,
  leaked,
  liveContainers,
  rssGrowthPerHour,
  schedule,
  servedTwice,
} from '../../../bench/lib/chaos.js'

const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5']

t.test('schedule: one seed, one run; enough faults of every kind for the time', async (t) => {
  const a = schedule(42, 600_000, HOSTS)
  t.same(schedule(42, 600_000, HOSTS), a, 'the same seed replays the same faults')
  t.not(JSON.stringify(schedule(43, 600_000, HOSTS)), JSON.stringify(a), 'another seed, other faults')
  t.same(new Set(a.map((f) => f.kind)), new Set(FAULT_KINDS), 'every kind comes up in 10 minutes')
  const planned = a.reduce((s, f) => s + (f.holdMs || 15_000) + f.gapMs, 0)
  t.ok(planned >= 600_000, `planned ${planned} ms fill the run`)
  for (const f of a) {
    t.ok(f.hosts.every((h) => HOSTS.includes(h)) && new Set(f.hosts).size === f.hosts.length)
    if (f.kind === 'partition-half') t.equal(f.hosts.length, 2, 'half of five: two cut off')
    if (f.kind === 'kill') t.ok(f.holdMs >= 1000 && f.holdMs <= 20_000)
  }
})

t.test('kernel: a subnet on two bridges, an address on two live containers', async (t) => {
  const hosts = [
    { host: 'h1', bridge: ['10.250.0.9/29'] },
    { host: 'h2', bridge: ['10.250.0.17/29'] },
    { host: 'h3', bridge: [] },
  ]
  const ctrs = [
    { ctr: 'a', host: 'h1', addrs: ['10.250.0.10/29'] },
    { ctr: 'b', host: 'h2', addrs: ['10.250.0.18/29'] },
    // its host lost the subnet: dead, its address may be reused
    { ctr: 'c', host: 'h3', addrs: ['10.250.0.10/29'] },
  ]
  t.same(
    liveContainers(hosts, ctrs).map((x) => x.ctr),
    ['a', 'b'],
  )
  t.same(kernelViolations(hosts, ctrs), [], 'a dead container sharing an address is no violation')
  const both = [...hosts.slice(0, 2), { host: 'h3', bridge: ['10.250.0.9/29'] }]
  t.same(kernelViolations(both, ctrs), [
    'subnet 10.250.0.8/29 on the bridges of h1 and h3',
    '10.250.0.10 on live containers a and c',
  ])
})

t.test('endpoint records: an address served for two containers, withdrawn ones aside', async (t) => {
  const h1 = [
    { containerId: 'x', ipv4: '10.250.0.10' },
    { containerId: 'y', ipv4: '10.250.0.11' },
  ]
  const h2 = [
    { containerId: 'x', ipv4: '10.250.0.10' },
    { containerId: 'z', ipv4: '10.250.0.11', withdrawn: 'outside its lease' },
  ]
  t.same(servedTwice([h1, h2]), [], 'one container seen twice, a withdrawn duplicate')
  t.same(servedTwice([h1, [{ containerId: 'z', ipv4: '10.250.0.11' }]]), ['10.250.0.11'])
})

t.test('RSS growth per hour: per agent life, after its first minute', async (t) => {
  const life = (pid: number, from: number, mb: (m: number) => number) =>
    Array.from({ length: 11 }, (_, m) => ({ pid, t: from + m * 60_000, mb: mb(m) }))
  // 100 MB at start, then 1 MB a minute: 60 MB/h; a short life after a kill does not count
  const samples = [...life(1, 0, (m) => (m === 0 ? 50 : 100 + m)), ...life(2, 0, () => 80).slice(0, 2)]
  t.equal(Math.round(rssGrowthPerHour(samples)), 60)
  t.equal(rssGrowthPerHour([]), 0)
})

t.test('leaks: only what is new and ours', async (t) => {
  t.same(
    leaked(['netns a', 'netns chx-h1'], ['netns chx-h1', 'netns chx-h2', 'netns b'], (s) =>
      s.includes('chx'),
    ),
    ['netns chx-h2'],
  )
})
