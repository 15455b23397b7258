import t from 'tap'
import { renderRule as iptRule } from '../../../src/datapath/firewall/iptables.js'
import { checkSpec, clusterSection, rulesOf } from '../../../src/datapath/firewall/model.js'
import { renderRule as nftRule } from '../../../src/datapath/firewall/nftables.js'
import { parseNetworkConfig } from '../../../src/ipam/config.js'
import {
  checkRange,
  conflictError,
  type EndpointEntry,
  type HeldPort,
  hairpinVeths,
  heldByEndpoints,
  mappingsOf,
  planPublish,
  portRows,
  portsSection,
  publishedPortRules,
  validatePublish,
} from '../../../src/ports/publish.js'
import type { PublishedPort } from '../../../src/store/records.js'
import { endpointValue } from '../../helpers/records.js'

const LOCAL = ['127.0.0.1', '192.0.2.11', '10.244.1.1']

function ep(name: string, ipv4: string, published: PublishedPort[], createdAt = '2026-01-01T00:00:00Z') {
  const value = endpointValue(name, ipv4, { containerId: `${name}-0123456789abcdef`, createdAt, published })
  return { key: `endpoints/peer1/${value.containerId}/eth0`, value } satisfies EndpointEntry
}

t.test('validatePublish normalizes good mappings', async (t) => {
  t.same(
    validatePublish(
      [
        { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostPort: 8080, containerPort: 80, protocol: 'UDP', hostIp: '0.0.0.0' },
        { hostPort: 0, containerPort: 53, protocol: 'udp', hostIp: '192.0.2.11' },
        { hostPort: 0, containerPort: 54, protocol: 'udp', hostIp: '' },
      ],
      LOCAL,
    ),
    [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 8080, containerPort: 80, protocol: 'udp' },
      { hostPort: 0, containerPort: 53, protocol: 'udp', hostIp: '192.0.2.11' },
      { hostPort: 0, containerPort: 54, protocol: 'udp' },
    ],
  )
})

t.test('validatePublish refuses bad input with every reason', async (t) => {
  const bad = (reqs: Parameters<typeof validatePublish>[0], re: RegExp) => {
    try {
      validatePublish(reqs, LOCAL)
      t.fail('accepted')
    } catch (err) {
      t.match(err, { code: 'PLX_PORTS_INVALID', message: re })
    }
  }
  bad([{ hostPort: 65536, containerPort: 80, protocol: 'tcp' }], /host port 65536 is outside 1-65535/)
  bad([{ hostPort: -1, containerPort: 80, protocol: 'tcp' }], /host port -1/)
  bad([{ hostPort: 80, containerPort: 0, protocol: 'tcp' }], /container port 0 is outside/)
  bad([{ hostPort: 80.5, containerPort: 80, protocol: 'tcp' }], /host port 80.5/)
  bad([{ hostPort: 80, containerPort: 80, protocol: 'sctp' }], /protocol "sctp" is not tcp or udp/)
  bad(
    [{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIp: '203.0.113.9' }],
    /203\.0\.113\.9 is not an address of this host/,
  )
  bad([{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIp: 'localhost' }], /not an IPv4 address/)
  bad(
    [
      { hostPort: 80, containerPort: 80, protocol: 'tcp' },
      { hostPort: 80, containerPort: 81, protocol: 'tcp', hostIp: '127.0.0.1' },
    ],
    /port mapping 2: host port 127\.0\.0\.1:80\/tcp is asked for twice/,
  )
  try {
    validatePublish(
      [
        { hostPort: 0, containerPort: 0, protocol: 'x' },
        { hostPort: 1, containerPort: 1, protocol: 'tcp' },
      ],
      LOCAL,
    )
    t.fail('accepted')
  } catch (err) {
    t.same((err as { details: { problems: string[] } }).details.problems, [
      'port mapping 1: container port 0 is outside 1-65535',
      'port mapping 1: protocol "x" is not tcp or udp',
    ])
  }
})

const proc = (hostPort: number, protocol: 'tcp' | 'udp', hostIp?: string): HeldPort => ({
  hostPort,
  protocol,
  ...(hostIp ? { hostIp } : {}),
  holder: { kind: 'process' },
})

t.test('planPublish: conflicts name the holder; address and protocol overlap rules', async (t) => {
  const web = ep('web', '10.244.1.5', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }])
  const held = heldByEndpoints([web])
  const r = planPublish(
    [{ hostPort: 8080, containerPort: 81, protocol: 'tcp', hostIp: '192.0.2.11' }],
    held,
    [1000, 1001],
  )
  t.ok('conflict' in r)
  if (!('conflict' in r)) return
  const err = conflictError(r.conflict.port, r.conflict.held)
  t.match(err, {
    code: 'PLX_PORTS_CONFLICT',
    message: /192\.0\.2\.11:8080\/tcp is already taken by container "web" \(web-01234567\)/,
  })
  // other protocol, or two distinct addresses: no conflict
  t.ok('ok' in planPublish([{ hostPort: 8080, containerPort: 80, protocol: 'udp' }], held, [1, 2]))
  t.ok(
    'ok' in
      planPublish(
        [{ hostPort: 53, containerPort: 53, protocol: 'udp', hostIp: '192.0.2.11' }],
        [proc(53, 'udp', '127.0.0.53')],
        [1, 2],
      ),
  )
  // a host socket on 127.0.0.1 would lose its traffic to a mapping on every address
  const p = planPublish(
    [{ hostPort: 9000, containerPort: 80, protocol: 'tcp' }],
    [proc(9000, 'tcp', '127.0.0.1')],
    [1, 2],
  )
  t.ok('conflict' in p && p.conflict.held.holder.kind === 'process')
  if ('conflict' in p) t.match(conflictError(p.conflict.port, p.conflict.held).message, /by a host process/)
})

t.test('planPublish picks free ports from the range, avoiding held and fellow ports', async (t) => {
  const held = [proc(5000, 'tcp'), proc(5001, 'tcp')]
  const r = planPublish(
    [
      { hostPort: 0, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5003, containerPort: 81, protocol: 'tcp' },
      { hostPort: 0, containerPort: 82, protocol: 'tcp' },
    ],
    held,
    [5000, 5004],
    () => 0,
  )
  t.same(r, {
    ok: [
      { hostPort: 5002, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5003, containerPort: 81, protocol: 'tcp' },
      { hostPort: 5004, containerPort: 82, protocol: 'tcp' },
    ],
  })
  // the random start wraps around the range
  t.same(
    planPublish([{ hostPort: 0, containerPort: 80, protocol: 'udp' }], [], [10, 12], () => 0.99),
    {
      ok: [{ hostPort: 12, containerPort: 80, protocol: 'udp' }],
    },
  )
  t.same(planPublish([{ hostPort: 0, containerPort: 80, protocol: 'tcp' }], held, [5000, 5001]), {
    exhausted: { hostPort: 0, containerPort: 80, protocol: 'tcp' },
  })
})

t.test('checkRange', async (t) => {
  t.same(checkRange([1, 65535]), [1, 65535])
  t.throws(() => checkRange([2000, 1000]), { code: 'PLX_CONFIG_INVALID' })
  t.throws(() => checkRange([0, 10]), { code: 'PLX_CONFIG_INVALID' })
  t.throws(() => checkRange([1]), { code: 'PLX_CONFIG_INVALID' })
})

t.test('mappingsOf: the older endpoint keeps an overlapping port', async (t) => {
  const a = ep(
    'a',
    '10.244.1.5',
    [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }],
    '2026-01-02T00:00:00Z',
  )
  const b = ep(
    'b',
    '10.244.1.6',
    [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }],
    '2026-01-01T00:00:00Z',
  )
  const { mappings, shadowed } = mappingsOf([a, b])
  t.same(
    mappings.map((m) => m.containerIp),
    ['10.244.1.6'],
  )
  t.same(
    shadowed.map((m) => m.containerIp),
    ['10.244.1.5'],
  )
})

t.test('portsSection: DNAT in prerouting and output, masquerade only for hairpin and loopback', async (t) => {
  const { mappings } = mappingsOf([
    ep('web', '10.244.1.5', [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 9090, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIp: '192.0.2.11' },
    ]),
  ])
  const s = portsSection({ subnet: '10.244.1.0/24', bridge: 'plexus0', mappings })
  t.same(checkSpec({ sections: [s] }), [], 'the datapath accepts it')
  const cluster = clusterSection(parseNetworkConfig({}))
  t.equal(
    rulesOf({ sections: [cluster, s] }, 'postrouting')[0]?.section,
    'ports',
    "hairpin masquerade comes before the cluster's RETURN",
  )
  t.equal(s.name, 'ports')
  const byId = Object.fromEntries(s.rules.map((r) => [r.id, r]))
  t.same(byId['tcp-8080-pre'], {
    id: 'tcp-8080-pre',
    hook: 'prerouting',
    match: { dstLocal: true, proto: 'tcp', dport: 8080 },
    action: { type: 'dnat', to: '10.244.1.5', port: 80 },
  })
  t.same(byId['tcp-8080-out']?.match, { dstLocal: true, proto: 'tcp', dport: 8080 })
  t.equal(byId['tcp-8080-out']?.hook, 'output')
  t.same(byId['hairpin-tcp-10-244-1-5-80'], {
    id: 'hairpin-tcp-10-244-1-5-80',
    hook: 'postrouting',
    match: { src: '10.244.1.0/24', dst: '10.244.1.5', oif: 'plexus0', proto: 'tcp', dport: 80, ctDnat: true },
    action: { type: 'masquerade' },
  })
  // hostIp narrows the match to that address
  t.same(byId['udp-5353-192-0-2-11-pre']?.match, { dst: '192.0.2.11', proto: 'udp', dport: 5353 })
  t.same(byId.localhost?.match, { src: '127.0.0.0/8', oif: 'plexus0' })
  t.same(byId['loopback-guard'], {
    id: 'loopback-guard',
    hook: 'input',
    match: { iif: 'plexus0', dst: '127.0.0.0/8', ctState: ['new', 'invalid'] },
    action: { type: 'drop' },
  })
  t.same(
    s.rules.filter((r) => r.id.startsWith('hairpin-')).map((r) => r.id),
    ['hairpin-tcp-10-244-1-5-80', 'hairpin-udp-10-244-1-5-53'],
    'one hairpin rule per container port',
  )
  const hairpin = byId['hairpin-tcp-10-244-1-5-80']
  if (hairpin) {
    t.match(iptRule('ports', 'postrouting', hairpin), /-m conntrack --ctstate DNAT .*-j MASQUERADE$/)
    t.match(nftRule('ports', hairpin), /tcp dport 80 ct status dnat masquerade comment/)
  }
  const guard = byId['loopback-guard']
  if (guard) {
    t.match(iptRule('ports', 'input', guard), /-m conntrack --ctstate NEW,INVALID .*-j DROP$/)
    t.match(
      nftRule('ports', guard),
      /^iifname "plexus0" ip daddr 127\.0\.0\.0\/8 ct state new,invalid counter drop/,
    )
  }
  // no masquerade matches a client from outside this host's subnet and loopback
  for (const r of s.rules.filter((r) => r.action.type === 'masquerade'))
    t.ok(r.match.src === '10.244.1.0/24' || r.match.src === '127.0.0.0/8', `${r.id} is narrow`)

  // what the two firewalls make of it
  const pre = byId['tcp-8080-pre']
  if (pre) {
    t.match(
      iptRule('ports', 'prerouting', pre),
      /-p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 .* -j DNAT --to-destination 10\.244\.1\.5:80$/,
    )
    t.match(nftRule('ports', pre), /^fib daddr type local tcp dport 8080 dnat ip to 10\.244\.1\.5:80 comment/)
  }
  t.same(
    portsSection({ subnet: '10.244.1.0/24', bridge: 'plexus0', mappings: [] }).rules,
    [],
    'nothing published, no rules',
  )
})

t.test('hairpinVeths: the veths of containers with an applied mapping', async (t) => {
  const a = ep('a', '10.244.1.5', [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }])
  const b = ep('b', '10.244.1.6', [])
  t.same(hairpinVeths([a, b], mappingsOf([a, b]).mappings), ['plxa'])
})

t.test(
  'publishedPortRules: the section, switches and their records from valid endpoint records only',
  async (t) => {
    const web = ep('web', '10.244.1.5', [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }])
    const quiet = ep('quiet', '10.244.1.6', [])
    const record = (e: EndpointEntry, owner = 'peer1') => ({ key: e.key, owner, value: e.value as never })
    const input = (endpoints: ReturnType<typeof record>[]) => ({
      subnet: '10.244.1.0/24',
      bridge: 'plexus0',
      endpoints,
    })
    const got = publishedPortRules(
      input([
        record(web),
        record(quiet),
        { key: 'endpoints/peer1/bad/eth0', owner: 'peer1', value: 'x' as never },
      ]),
    )
    t.same(
      got.section,
      portsSection({ subnet: '10.244.1.0/24', bridge: 'plexus0', mappings: mappingsOf([web]).mappings }),
    )
    t.same(got.switches, [
      { kind: 'route-localnet', dev: 'plexus0', on: true },
      { kind: 'hairpin', dev: web.value.hostVeth, on: true },
    ])
    t.same(got.origins['tcp-18080-pre'], [web.key])
    t.same(got.origins['route-localnet plexus0'], [web.key])
    t.same(got.origins[`hairpin ${web.value.hostVeth}`], [web.key])
    const forged = publishedPortRules(input([record(web, 'peer2')]))
    t.same(forged.section.rules, [], "a record under another host's key is not ours to publish")
    t.same(forged.switches, [{ kind: 'route-localnet', dev: 'plexus0', on: false }], 'route_localnet off')
  },
)

t.test('portRows lists every published port with the host address clients use', async (t) => {
  const a = {
    ...ep('web', '10.244.1.5', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]),
    owner: 'peer1',
  }
  const b = {
    ...ep('dns', '10.244.2.5', [{ hostPort: 53, containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1' }]),
    owner: 'peer2',
  }
  b.value.host = 'h2'
  const rows = portRows([a, b], 'peer1', (o) => (o === 'peer1' ? '192.0.2.11' : '192.0.2.12'))
  t.same(
    rows.map((r) => [
      r.host,
      `${r.hostAddress}:${r.hostPort}`,
      r.container,
      r.containerPort,
      r.protocol,
      r.local,
    ]),
    [
      ['h1', '192.0.2.11:8080', 'web', 80, 'tcp', true],
      ['h2', '127.0.0.1:53', 'dns', 53, 'udp', false],
    ],
  )
})
