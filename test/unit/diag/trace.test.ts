import t from 'tap'
import { parseDestination } from '../../../src/cli/commands/trace.js'
import { foreignNftChains, nftChainDrops } from '../../../src/diag/firewall-view.js'
import {
  diagnose,
  type Hop,
  parseProbeQuestion,
  parseResolveQuestion,
  parseSeenQuestion,
  parseTraceQuestion,
} from '../../../src/diag/trace/model.js'
import { isDnsName, searchCandidates, serviceOfName, whyNoAddress } from '../../../src/diag/trace/names.js'
import { arrivingSource, publishedOn, resolvePlace } from '../../../src/diag/trace/places.js'
import { forwardVerdict } from '../../../src/diag/trace/verdict.js'
import type { Member } from '../../../src/services/catalog.js'
import type { StoreRecord } from '../../../src/store/types.js'

const rec = (key: string, value: unknown) =>
  ({ key, owner: key.split('/')[1], value }) as unknown as StoreRecord
const lease = (subnet: string, publicIp: string, hostname: string) => ({
  subnet,
  publicIp,
  hostname,
  backend: { type: 'vxlan' },
  claimedAt: 1,
})
const records = {
  nodes: [
    rec('nodes/P1', { name: 'h1', address: '192.0.2.11' }),
    rec('nodes/P2', { name: 'h2', address: '192.0.2.12' }),
  ],
  leases: [
    rec('leases/P1', lease('10.244.1.0/24', '192.0.2.11', 'h1')),
    rec('leases/P2', lease('10.244.2.0/24', '192.0.2.12', 'h2')),
  ],
  endpoints: [
    rec('endpoints/P1/abcdef0123456789/eth0', {
      name: 'web',
      containerId: 'abcdef0123456789',
      ifname: 'eth0',
      host: 'h1',
      ipv4: '10.244.1.5',
      createdAt: '2026-01-01T00:00:00Z',
    }),
    rec('endpoints/P2/0123456789abcdef/eth0', {
      name: 'db',
      containerId: '0123456789abcdef',
      ifname: 'eth0',
      host: 'h2',
      ipv4: '10.244.2.7',
      createdAt: '2026-01-01T00:00:00Z',
      published: [{ hostPort: 8088, containerPort: 80, protocol: 'tcp' }],
    }),
  ],
}

t.test('places: container by name, id prefix, address; host by name; an address in a subnet', async (t) => {
  t.match(resolvePlace(records, 'web'), {
    kind: 'container',
    peer: 'P1',
    host: 'h1',
    ip: '10.244.1.5',
    endpointKey: 'endpoints/P1/abcdef0123456789/eth0',
  })
  t.match(resolvePlace(records, '0123456789ab'), { kind: 'container', peer: 'P2', ip: '10.244.2.7' })
  t.match(resolvePlace(records, '10.244.2.7'), { kind: 'container', host: 'h2' })
  t.match(
    resolvePlace(records, 'h2'),
    { kind: 'host', peer: 'P2', ip: '10.244.2.1' },
    'a host is its bridge gateway',
  )
  t.match(resolvePlace(records, '10.244.1.77'), { kind: 'address', peer: 'P1', host: 'h1' })
  t.match(
    resolvePlace(records, '192.0.2.12'),
    { kind: 'host', peer: 'P2', host: 'h2', ip: '10.244.2.1' },
    "a host's underlay address (what <host>.node.plexus.internal answers) is that host",
  )
  t.throws(() => resolvePlace(records, 'nosuch'), { code: 'PLX_TRACE_UNKNOWN' })
  t.throws(() => resolvePlace(records, '10.9.9.9'), { code: 'PLX_TRACE_UNKNOWN' }, 'outside every subnet')
  t.throws(
    () => resolvePlace(records, 'abc'),
    { code: 'PLX_TRACE_UNKNOWN' },
    'an id prefix under 12 characters is no match',
  )
})

t.test('inspect question: validated field by field', async (t) => {
  const q = {
    op: 'trace',
    role: 'dst',
    local: false,
    flow: { src: '10.244.1.5', dst: '10.244.2.7', proto: 'tcp', port: 80 },
  }
  t.same(parseTraceQuestion(q), q)
  for (const [bad, what] of [
    [{ ...q, role: 'mid' }, 'role'],
    [{ ...q, local: 'no' }, 'local'],
    [{ ...q, flow: { ...q.flow, src: '10.244.1' } }, 'address'],
    [{ ...q, flow: { ...q.flow, proto: 'sctp' } }, 'proto'],
    [{ ...q, flow: { ...q.flow, port: 70000 } }, 'port'],
    [{ ...q, endpointKey: 5 }, 'endpointKey'],
    [null, 'null'],
  ] as const)
    t.throws(() => parseTraceQuestion(bad), { code: 'PLX_INSPECT_BAD_QUESTION' }, what)
})

t.test('diagnosis: the first hop that stops the packet, with cause and fix', async (t) => {
  const hop = (component: string, action: Hop['action'], extra: Partial<Hop> = {}): Hop => ({
    host: 'h1',
    component,
    action,
    object: `${component}-obj`,
    ...extra,
  })
  t.same(diagnose([hop('veth', 'forwarded'), hop('socket', 'delivered')]), {
    ok: true,
    line: 'path ok: 2 hops, delivered on h1 (socket-obj)',
  })
  const d = diagnose([
    hop('veth', 'forwarded'),
    hop('vxlan-fdb', 'dropped', { cause: 'FDB entry missing', fix: 'wait a pass' }),
    hop('agent', 'no-answer', { host: 'h2' }),
  ])
  t.same(d, { ok: false, hop: 1, line: 'vxlan-fdb on h1 drops it: FDB entry missing; fix: wait a pass' })
  t.match(
    diagnose([hop('agent', 'no-answer', { host: 'h2', cause: 'timeout' })]).line,
    /^h2 did not answer: timeout/,
  )
})

t.test(
  'forward verdict: foreign rule ahead of our jump, missing jump, foreign nft drop policy',
  async (t) => {
    const flow = { src: '10.244.1.5', dst: '10.244.2.7', proto: 'tcp' as const, port: 80 }
    const save = (rules: string[], policy = 'ACCEPT') =>
      ['*filter', `:FORWARD ${policy} [0:0]`, ...rules.map((r) => `-A FORWARD ${r}`), 'COMMIT'].join('\n')
    const jump = '-m comment --comment plexus-hook -j PLEXUS-FORWARD'
    t.equal(forwardVerdict('h', flow, { iptablesSave: save([jump]) }).action, 'forwarded')
    const ahead = forwardVerdict('h', flow, { iptablesSave: save(['-s 10.244.1.5/32 -j DROP', jump]) })
    t.equal(ahead.action, 'dropped')
    t.equal(ahead.object, 'iptables -A FORWARD -s 10.244.1.5/32 -j DROP')
    t.equal(
      forwardVerdict('h', flow, { iptablesSave: save(['-s 10.244.9.9/32 -j DROP', jump]) }).action,
      'forwarded',
      'another source',
    )
    t.equal(
      forwardVerdict('h', flow, { iptablesSave: save(['-p udp -j DROP', jump]) }).action,
      'forwarded',
      'another protocol',
    )
    t.equal(
      forwardVerdict('h', flow, { iptablesSave: save(['-p tcp -m tcp --dport 80 -j REJECT', jump]) }).action,
      'dropped',
      'the port',
    )
    t.equal(
      forwardVerdict('h', flow, { iptablesSave: save([jump, '-j DROP']) }).action,
      'forwarded',
      'after our jump: our accept decided',
    )
    t.equal(
      forwardVerdict('h', flow, { iptablesSave: save([], 'DROP') }).action,
      'dropped',
      'policy DROP without our jump',
    )
    const nft = {
      nftables: [
        {
          chain: { family: 'inet', table: 'hostfw', name: 'guard', hook: 'forward', prio: 0, policy: 'drop' },
        },
      ],
    }
    const v = forwardVerdict('h', flow, { iptablesSave: save([jump]), nftRuleset: nft })
    t.equal(v.action, 'dropped', 'a foreign nft chain dropping by policy')
    t.match(v.object, /inet hostfw guard/)
  },
)

t.test('plexctl trace destination syntax', async (t) => {
  t.same(parseDestination('web'), { dst: 'web' })
  t.same(parseDestination('web:8080'), { dst: 'web', port: 8080 })
  t.same(parseDestination('10.244.2.7:53/udp'), { dst: '10.244.2.7', port: 53, proto: 'udp' })
  t.same(parseDestination('db/icmp'), { dst: 'db', proto: 'icmp' })
  t.throws(() => parseDestination('web:99999'))
  t.throws(() => parseDestination('web:80/sctp'))
})

t.test(
  'published ports: the mapping on the destination host, and the source the packet arrives with',
  async (t) => {
    t.same(publishedOn(records, 'P2', 8088, 'tcp'), {
      endpointKey: 'endpoints/P2/0123456789abcdef/eth0',
      hostIp: '192.0.2.12',
      containerIp: '10.244.2.7',
      containerPort: 80,
    })
    t.equal(publishedOn(records, 'P2', 8088, 'udp'), undefined, 'another protocol')
    t.equal(publishedOn(records, 'P1', 8088, 'tcp'), undefined, 'published on another host')
    const web = resolvePlace(records, 'web')
    t.equal(arrivingSource(records, web, true), '192.0.2.11', 'masqueraded: the source host underlay address')
    t.equal(arrivingSource(records, web, false), '10.244.1.5', 'without IPMasq: the container address')
    t.equal(
      arrivingSource(records, resolvePlace(records, 'h1'), false),
      '192.0.2.11',
      'a host sends from its own',
    )
  },
)

t.test("names: what the source container's resolver asks, in order", async (t) => {
  t.same(
    searchCandidates('web'),
    ['web.svc.plexus.internal', 'web.plexus.internal', 'web'],
    'no dot: search first',
  )
  t.same(
    searchCandidates('c2.ctr.plexus.internal'),
    [
      'c2.ctr.plexus.internal',
      'c2.ctr.plexus.internal.svc.plexus.internal',
      'c2.ctr.plexus.internal.plexus.internal',
    ],
    'ndots:1 reached: as is first',
  )
  t.same(
    searchCandidates('web.svc.plexus.internal.'),
    ['web.svc.plexus.internal'],
    'a trailing dot: only as is',
  )
  t.equal(serviceOfName('web.svc.plexus.internal', 'plexus.internal'), 'web')
  t.equal(serviceOfName('primary.db.svc.plexus.internal', 'plexus.internal'), 'db', 'a tag in front')
  t.equal(serviceOfName('c2.ctr.plexus.internal', 'plexus.internal'), undefined)
  t.ok(isDnsName('web') && isDnsName('web.svc.plexus.internal') && isDnsName('_x.y'))
  t.notOk(isDnsName('10.0.0.1') || isDnsName('a b') || isDnsName('-x') || isDnsName(''))
})

t.test('names: why a service answers no address', async (t) => {
  const member = (name: string): Member => ({ name, host: 'h2', healthy: false }) as unknown as Member
  t.match(whyNoAddress({ name: 'api', members: [] }, 'api').cause, /api has no member/)
  const sick = whyNoAddress({ name: 'api', members: ['a', 'b', 'c', 'd'].map(member) }, 'api')
  t.match(sick.cause, /no healthy endpoint: 4 member\(s\) \(a on h2, b on h2, c on h2 and 1 more\)/)
  t.match(sick.fix, /plexctl service show api/)
})

t.test('the other inspect questions: resolve, probe, seen, a published port', async (t) => {
  t.same(parseResolveQuestion({ op: 'resolve', name: 'web', endpointKey: 'endpoints/P1/x/eth0' }), {
    op: 'resolve',
    name: 'web',
    endpointKey: 'endpoints/P1/x/eth0',
  })
  t.throws(() => parseResolveQuestion({ name: 'x'.repeat(254) }), { code: 'PLX_INSPECT_BAD_QUESTION' })
  t.throws(() => parseResolveQuestion({ name: 7 }), { code: 'PLX_INSPECT_BAD_QUESTION' })
  const flow = { src: '10.244.1.5', dst: '10.244.2.7', proto: 'udp', port: 53 }
  t.same(parseProbeQuestion({ op: 'probe', flow }), { op: 'probe', flow })
  t.throws(() => parseProbeQuestion({ flow: { ...flow, dst: 'x' } }), { code: 'PLX_INSPECT_BAD_QUESTION' })
  t.same(parseSeenQuestion({ src: '10.244.1.5', dst: '10.244.2.7', proto: 'tcp', dport: 80, sport: 40000 }), {
    op: 'seen',
    src: '10.244.1.5',
    dst: '10.244.2.7',
    proto: 'tcp',
    dport: 80,
    sport: 40000,
  })
  t.throws(() => parseSeenQuestion({ src: '10.244.1.5', dst: '10.244.2.7', proto: 'tcp', sport: 0 }), {
    code: 'PLX_INSPECT_BAD_QUESTION',
  })
  const q = { op: 'trace', role: 'dst', local: false, flow: { ...flow, proto: 'tcp', port: 8088 } }
  const publish = { arrivingSrc: '192.0.2.11', containerIp: '10.244.2.7', containerPort: 80 }
  t.same(parseTraceQuestion({ ...q, publish }), { ...q, publish })
  for (const bad of [{ ...publish, containerIp: 'h2' }, { ...publish, containerPort: 0 }, 'x'])
    t.throws(() => parseTraceQuestion({ ...q, publish: bad }), { code: 'PLX_INSPECT_BAD_QUESTION' })
})

t.test('foreign nftables rules on the forward hook, evaluated against the flow', async (t) => {
  const flow = { src: '10.244.1.5', dst: '10.244.2.7', proto: 'tcp' as const, dport: 8080 }
  const match = (left: unknown, right: unknown, op = '==') => ({ match: { op, left, right } })
  const saddr = { payload: { protocol: 'ip', field: 'saddr' } }
  const dport = { payload: { protocol: 'tcp', field: 'dport' } }
  const ruleset = (...rules: unknown[][]) => ({
    nftables: [
      { chain: { family: 'ip', table: 'hostfw', name: 'guard', hook: 'forward', prio: 0, policy: 'accept' } },
      ...rules.map((expr, i) => ({
        rule: { family: 'ip', table: 'hostfw', chain: 'guard', handle: i + 2, expr },
      })),
    ],
  })
  const drops = (rs: { nftables: unknown[] }, f = flow) => {
    const [chain] = foreignNftChains(rs, { skipXtables: false })
    return chain && nftChainDrops(rs, chain, f)
  }
  const prefix = { prefix: { addr: '10.244.1.0', len: 24 } }
  t.match(
    drops(ruleset([match(saddr, prefix), match(dport, 8080), { drop: null }])),
    /^ip hostfw guard handle 2:/,
  )
  t.equal(
    drops(ruleset([match(saddr, prefix), match(dport, 9090), { drop: null }])),
    undefined,
    'another port',
  )
  t.equal(drops(ruleset([match(saddr, '10.9.9.9'), { drop: null }])), undefined, 'another source')
  t.equal(drops(ruleset([match(saddr, prefix, '!='), { drop: null }])), undefined, '!= its own subnet')
  t.equal(
    drops(ruleset([match({ payload: { protocol: 'udp', field: 'dport' } }, 8080), { drop: null }])),
    undefined,
    'udp dport never matches a tcp flow',
  )
  t.ok(drops(ruleset([match(dport, { set: [80, 8080] }), { reject: null }])), 'a set, reject')
  t.ok(drops(ruleset([match(dport, { range: [8000, 8999] }), { drop: null }])), 'a range')
  t.ok(drops(ruleset([match({ meta: { key: 'l4proto' } }, 'tcp'), { drop: null }])), 'meta l4proto')
  t.ok(
    drops(ruleset([match({ ct: { key: 'state' } }, 'new'), { drop: null }])),
    'a match it cannot read may match',
  )
  t.equal(
    drops(ruleset([match(saddr, prefix), { accept: null }], [{ drop: null }])),
    undefined,
    'an earlier sure accept ends the chain',
  )
  t.ok(
    drops(ruleset([match({ ct: { key: 'state' } }, 'new'), { accept: null }], [{ drop: null }])),
    'an accept it cannot be sure of does not',
  )
  t.equal(
    forwardVerdict(
      'h',
      { ...flow, port: 8080 },
      { nftRuleset: ruleset([match(dport, 8080), { drop: null }]) },
    ).action,
    'dropped',
  )
})
