import t from 'tap'
import { place } from '../../../src/scheduler/placement/solver.js'
import type { Constraint } from '../../../src/scheduler/spec.js'
import { group, host, hostsOf, input, job, verdict } from './fixtures.js'

const labelled = [
  host('h1', { zone: 'a', labels: { disk: 'ssd', rack: 'r1' } }),
  host('h2', { zone: 'a', labels: { disk: 'hdd', rack: 'r2' } }),
  host('h3', { zone: 'b', labels: { rack: 'r10' } }),
  host('h4', { zone: 'c', labels: { disk: 'nvme', rack: 'r11' } }),
]

/** where 4 distinct-host slots may go under one constraint */
function allowed(c: Constraint): string[] {
  const plan = place(
    input(job([group('g', 4, { constraints: [c, { operator: 'distinct_hosts' }] })]), labelled),
  )
  return hostsOf(plan, 'g')
}

t.test('operator =', async (t) => {
  t.same(allowed({ operator: '=', attribute: 'zone', value: 'a' }), ['h1', 'h2'])
  const plan = place(
    input(
      job([group('g', 1, { constraints: [{ operator: '=', attribute: 'zone', value: 'a' }] })]),
      labelled,
    ),
  )
  t.same(verdict(plan, 'g', 'h3'), {
    host: 'peer-h3',
    name: 'h3',
    filter: 'constraint',
    reason: 'zone = a does not hold',
  })
})

t.test('operator !=', async (t) => {
  t.same(allowed({ operator: '!=', attribute: 'labels.disk', value: 'hdd' }), ['h1', 'h3', 'h4'])
})

t.test('operator in', async (t) => {
  t.same(allowed({ operator: 'in', attribute: 'labels.disk', values: ['ssd', 'nvme'] }), ['h1', 'h4'])
})

t.test('operator not_in (a host without the attribute is not in the list)', async (t) => {
  t.same(allowed({ operator: 'not_in', attribute: 'labels.disk', values: ['ssd', 'nvme'] }), ['h2', 'h3'])
})

t.test('operator regexp', async (t) => {
  t.same(allowed({ operator: 'regexp', attribute: 'labels.rack', value: '^r1\\d$' }), ['h3', 'h4'])
  t.same(allowed({ operator: 'regexp', attribute: 'name', value: '^h[12]$' }), ['h1', 'h2'])
})

t.test('operator exists', async (t) => {
  t.same(allowed({ operator: 'exists', attribute: 'labels.disk' }), ['h1', 'h2', 'h4'])
})

t.test('attributes name and address', async (t) => {
  t.same(allowed({ operator: '=', attribute: 'address', value: '192.0.2.3' }), ['h3'])
  t.same(allowed({ operator: 'in', attribute: 'name', values: ['h2', 'h4'] }), ['h2', 'h4'])
})

t.test('distinct_hosts: never two slots on one host, in group or job scope', async (t) => {
  const hosts = [host('h1'), host('h2'), host('h3')]
  const three = place(input(job([group('g', 3, { constraints: [{ operator: 'distinct_hosts' }] })]), hosts))
  t.same(hostsOf(three, 'g'), ['h1', 'h2', 'h3'])
  const four = place(input(job([group('g', 4, { constraints: [{ operator: 'distinct_hosts' }] })]), hosts))
  t.equal(four.placements.length, 3)
  t.equal(four.failures.length, 1)
  t.match(four.failures[0]?.reason, /distinct_hosts 3/)
  const jobScope = place(
    input(job([group('a', 2), group('b', 2)], { constraints: [{ operator: 'distinct_hosts' }] }), [
      ...hosts,
      host('h4'),
    ]),
  )
  t.same(jobScope.placements.map((p) => p.hostName).sort(), ['h1', 'h2', 'h3', 'h4'])
})

t.test('distinct_property with a limit', async (t) => {
  const hosts = ['a', 'a', 'b', 'b', 'c', 'c'].map((z, i) => host(`h${i + 1}`, { zone: z }))
  const c: Constraint = { operator: 'distinct_property', attribute: 'zone', limit: 2 }
  const six = place(input(job([group('g', 6, { constraints: [c] })]), hosts))
  const perZone = (plan: typeof six) => {
    const m: Record<string, number> = {}
    for (const p of plan.placements) {
      const z = hosts.find((h) => h.id === p.host)?.labels.zone as string
      m[z] = (m[z] ?? 0) + 1
    }
    return m
  }
  t.same(perZone(six), { a: 2, b: 2, c: 2 })
  const seven = place(input(job([group('g', 7, { constraints: [c] })]), hosts))
  t.equal(seven.failures.length, 1)
  t.match(seven.failures[0]?.reason, /distinct_property 6 \(e\.g\. zone=\w already holds 2 \(limit 2\)\)/)
  const one = place(input(job([group('g', 3, { constraints: [{ ...c, limit: undefined }] })]), hosts))
  t.same(perZone(one), { a: 1, b: 1, c: 1 }, 'limit defaults to 1')
})

t.test('hard anti-affinity to a running service and to a group of the job', async (t) => {
  const hosts = [host('h1'), host('h2'), host('h3')]
  const plan = place(
    input(job([group('g', 2, { antiAffinities: [{ service: 'db' }] })]), hosts, {
      allocations: [{ host: 'peer-h1', job: 'other', group: 'db', service: 'db' }],
    }),
  )
  t.notOk(hostsOf(plan, 'g').includes('h1'))
  t.same(verdict(plan, 'g', 'h1'), {
    host: 'peer-h1',
    name: 'h1',
    filter: 'anti-affinity',
    reason: 'runs service db',
  })
  const inJob = place(
    input(job([group('a', 1), group('b', 3, { antiAffinities: [{ service: 'a' }] })]), hosts),
  )
  const aHost = hostsOf(inJob, 'a')[0]
  t.notOk(hostsOf(inJob, 'b').includes(aHost as string))
})

t.test('ports: a host port in use filters the host; one publishing slot per host', async (t) => {
  const ports = [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' as const }]
  const hosts = [host('h1', { usedPorts: ['80/tcp'] }), host('h2'), host('h3')]
  const plan = place(input(job([group('g', 3, { ports })]), hosts))
  t.same(hostsOf(plan, 'g'), ['h2', 'h3'])
  t.equal(verdict(plan, 'g', 'h1')?.filter, 'ports')
  t.equal(plan.failures.length, 1)
  t.match(plan.failures[0]?.reason, /ports/)
})

t.test('alive and capacity', async (t) => {
  const hosts = [
    host('h1', { alive: false }),
    host('h2', { cpu: 1000, usedCpu: 900 }),
    host('h3', { cpu: 1000 }),
  ]
  const plan = place(input(job([group('g', 2, {}, 400)]), hosts))
  t.same(hostsOf(plan, 'g'), ['h3', 'h3'])
  t.equal(verdict(plan, 'g', 'h1')?.filter, 'alive')
  t.same(verdict(plan, 'g', 'h2'), {
    host: 'peer-h2',
    name: 'h2',
    filter: 'capacity',
    reason: 'cpu: needs 400m, 100m free',
  })
  const big = place(input(job([group('g', 3, {}, 400)]), hosts))
  t.equal(big.failures.length, 1, 'a job larger than the cluster fails its extra slot')
  t.match(big.failures[0]?.reason, /alive 1.*capacity 2/)
})

t.test('maxRttMs bounds the RTT to a partner', async (t) => {
  const hosts = [host('h1', { zone: 'a', cpu: 100 }), host('h2', { zone: 'b' }), host('h3', { zone: 'a' })]
  const plan = place(
    input(
      job([
        group('db', 1, { constraints: [{ operator: '=', attribute: 'name', value: 'h1' }] }),
        group('api', 1, { talksTo: [{ service: 'db', maxRttMs: 5 }] }),
      ]),
      hosts,
    ),
  )
  t.same(hostsOf(plan, 'api'), ['h3'], 'h1 is full, h2 is 20 ms away')
  t.equal(verdict(plan, 'api', 'h2')?.filter, 'max-rtt')
})

t.test('system job: one slot per eligible host', async (t) => {
  const plan = place(
    input(
      job([group('agent', 0, { constraints: [{ operator: 'exists', attribute: 'labels.disk' }] })], {
        type: 'system',
      }),
      labelled,
    ),
  )
  t.same(hostsOf(plan, 'agent'), ['h1', 'h2', 'h4'])
})

t.test(
  'named networks: a host without a subnet or block of one the group joins is not feasible',
  async (t) => {
    const hosts = [
      { ...host('h1'), networks: ['blue', 'lan'] },
      { ...host('h2'), networks: ['blue'] },
      { ...host('h3'), networks: [] },
      host('h4'), // not known (the submission check's view): not filtered
    ]
    const plan = place(input(job([group('g', 4, { networks: ['lan', 'plexus', 'blue'] })]), hosts))
    t.same(verdict(plan, 'g', 'h2'), {
      host: 'peer-h2',
      name: 'h2',
      filter: 'network',
      reason: 'holds no subnet or block of network lan',
    })
    t.match(verdict(plan, 'g', 'h3'), {
      filter: 'network',
      reason: 'holds no subnet or block of network lan, blue',
    })
    t.notOk(verdict(plan, 'g', 'h1')?.filter)
    t.notOk(verdict(plan, 'g', 'h4')?.filter)
    t.same(hostsOf(plan, 'g').sort(), ['h1', 'h1', 'h4', 'h4'])
    const cluster = place(input(job([group('g', 1, { networks: ['plexus'] })]), hosts))
    t.notOk(verdict(cluster, 'g', 'h3')?.filter, 'every host has the cluster network')
  },
)
