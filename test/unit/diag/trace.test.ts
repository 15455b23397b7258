import t from 'tap'
import { parseDestination } from '../../../src/cli/commands/trace.js'
import { diagnose, type Hop, parseTraceQuestion } from '../../../src/diag/trace/model.js'
import { resolvePlace } from '../../../src/diag/trace/places.js'
import { forwardVerdict } from '../../../src/diag/trace/verdict.js'
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
