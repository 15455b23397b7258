import t from 'tap'
import {
  type AttachmentFacts,
  assertAddressing,
  buildEndpoint,
  buildResult,
  CNI,
  checkProblems,
  defaultName,
  hostVethName,
  NETWORK_LABEL,
  type Observed,
  resolveRoutes,
  splitStaticIp,
  toCniError,
} from '../../../src/endpoints/model.js'
import { PlexusError } from '../../../src/lib/errors.js'

const facts: AttachmentFacts = {
  containerId: 'c0ffee0123456789',
  ifname: 'eth0',
  netns: '/run/netns/c1',
  address: '10.244.3.7',
  prefixLength: 24,
  gateway: '10.244.3.1',
  bridge: '10.244.3.1',
  mtu: 1450,
  mac: '0a:00:00:00:00:07',
  hostVeth: 'plx0123456789ab',
  hostMac: '0a:00:00:00:00:01',
}

const healthy: Observed = {
  hostVeth: { up: true, master: 4, mtu: 1450 },
  bridgeIndex: 4,
  container: {
    up: true,
    mtu: 1450,
    mac: facts.mac,
    addresses: ['10.244.3.7/24'],
    defaultGateways: ['10.244.3.1'],
    routes: [{ dst: '10.244.3.0/24' }],
  },
}

t.test('host veth names are stable, distinct and fit IFNAMSIZ', async (t) => {
  const a = hostVethName({ containerId: 'abc', ifname: 'eth0' })
  t.equal(a, hostVethName({ containerId: 'abc', ifname: 'eth0' }))
  t.not(a, hostVethName({ containerId: 'abc', ifname: 'eth1' }))
  t.match(a, /^plx[0-9a-f]{12}$/)
  t.equal(defaultName('0123456789abcdef'), '0123456789ab')
})

t.test('result: interfaces, ips, routes and default dns', async (t) => {
  t.same(buildResult(facts, undefined), {
    cniVersion: '1.1.0',
    interfaces: [
      { name: 'plx0123456789ab', mtu: 1450, mac: '0a:00:00:00:00:01' },
      { name: 'eth0', mac: facts.mac, mtu: 1450, sandbox: '/run/netns/c1' },
    ],
    ips: [{ address: '10.244.3.7/24', gateway: '10.244.3.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1' }],
    dns: {
      nameservers: ['10.244.3.1'],
      search: ['svc.plexus.internal', 'plexus.internal'],
      options: ['ndots:1'],
    },
  })
  const custom = buildResult(facts, { nameservers: ['10.0.0.10'], domain: 'x' }).dns
  t.same(custom, {
    nameservers: ['10.0.0.10'],
    search: ['svc.plexus.internal', 'plexus.internal'],
    options: ['ndots:1'],
    domain: 'x',
  })
})

t.test('endpoint record carries the request and the network label', async (t) => {
  const v = buildEndpoint(
    {
      containerId: facts.containerId,
      ifname: 'eth0',
      netns: facts.netns,
      network: 'net1',
      labels: { a: '1' },
      service: 'web',
      published: [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }],
    },
    facts,
    'h1',
    new Date(0),
  )
  t.match(v, {
    name: 'c0ffee012345',
    host: 'h1',
    ipv4: '10.244.3.7',
    hostVeth: facts.hostVeth,
    service: 'web',
    labels: { a: '1', [NETWORK_LABEL]: 'net1' },
    createdAt: '1970-01-01T00:00:00.000Z',
  })
  t.same(v.published, [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }])
})

t.test("endpoint record carries its service's checks with defaults; a bad one refuses the ADD", async (t) => {
  const req = {
    containerId: facts.containerId,
    ifname: 'eth0',
    netns: facts.netns,
    network: 'net1',
    labels: {},
    service: 'web',
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' as const }],
  }
  const v = buildEndpoint(
    { ...req, checks: [{ name: 'up', type: 'http', port: 'http' }] },
    facts,
    'h1',
    new Date(0),
  )
  t.same(v.checks, [
    { name: 'up', type: 'http', port: 'http', intervalMs: 5000, timeoutMs: 2000, failures: 3 },
  ])
  t.equal(buildEndpoint(req, facts, 'h1', new Date(0)).checks, undefined)
  t.throws(
    () =>
      buildEndpoint({ ...req, checks: [{ name: 'up', type: 'tcp', port: 'db' }] }, facts, 'h1', new Date(0)),
    {
      code: 'PLX_SERVICE_BAD_CHECK',
    },
  )
})

t.test('static address prefix must match the host subnet', async (t) => {
  t.equal(splitStaticIp('10.244.3.9', 24), '10.244.3.9')
  t.equal(splitStaticIp('10.244.3.9/24', 24), '10.244.3.9')
  t.throws(() => splitStaticIp('10.244.3.9/16', 24), { code: 'PLX_ENDPOINTS_BAD_PREFIX' })
})

t.test('CHECK: nothing on a healthy attachment, one line per problem otherwise', async (t) => {
  t.same(checkProblems(facts, healthy, ['10.244.3.7/24']), [])
  t.same(checkProblems(facts, { ...healthy, hostVeth: undefined }, undefined), [
    'host interface plx0123456789ab is missing',
  ])
  const broken: Observed = {
    hostVeth: { up: false, master: 9, mtu: 1450 },
    bridgeIndex: 4,
    container: { up: false, mtu: 1400, mac: 'ff', addresses: [], defaultGateways: [], routes: [] },
  }
  const p = checkProblems(facts, broken, ['10.9.9.9/24'])
  t.equal(p.length, 8, p.join('\n'))
  t.match(p.join('\n'), /prevResult has 10\.9\.9\.9\/24/)
  t.match(p.join('\n'), /not attached to plexus0/)
  t.match(p.join('\n'), /MTU 1400, want 1450/)
  t.same(checkProblems(facts, { ...healthy, container: undefined }, undefined), [
    'interface eth0 is missing in /run/netns/c1',
  ])
  const elsewhere = {
    ...healthy,
    container: { ...healthy.container!, defaultGateways: [], otherDefault: true },
  }
  t.same(checkProblems(facts, elsewhere, undefined), [], 'another interface may own the default route')
})

t.test('agent errors map to CNI codes and HTTP statuses', async (t) => {
  const cases: [string, number, number][] = [
    ['PLX_IPAM_NO_LEASE', CNI.TRY_AGAIN_LATER, 503],
    ['PLX_NETNS_NOT_FOUND', CNI.UNKNOWN_CONTAINER, 400],
    ['PLX_IPAM_OUT_OF_RANGE', CNI.INVALID_CONFIG, 400],
    ['PLX_IPAM_EXHAUSTED', CNI.NO_ADDRESS, 400],
    ['PLX_IPAM_TAKEN', CNI.ADDRESS_IN_USE, 400],
    ['PLX_ENDPOINTS_UNAVAILABLE', CNI.NOT_AVAILABLE, 503],
    ['PLX_ENDPOINTS_DEGRADED', CNI.NOT_AVAILABLE_DEGRADED, 503],
    ['PLX_SOMETHING_ELSE', CNI.INTERNAL, 500],
  ]
  for (const [code, cni, status] of cases) {
    const e = toCniError(new PlexusError(code, 'm'))
    t.equal(e.cni.code, cni, code)
    t.equal(e.status, status, `${code} status`)
  }
  const check = toCniError(new PlexusError('PLX_ENDPOINTS_CHECK_FAILED', 'x', { problems: ['a', 'b'] }))
  t.equal(check.cni.details, 'a; b')
  t.equal(toCniError(new Error('boom')).cni.code, CNI.INTERNAL)
})

t.test('a gateway override and extra routes: in the result, the record and CHECK', async (t) => {
  const routes = resolveRoutes(
    [{ dst: '192.168.0.0/16' }, { dst: '172.16.0.0/12', gw: '10.244.3.6' }],
    '10.244.3.5',
  )
  t.same(routes, [
    { dst: '192.168.0.0/16', gw: '10.244.3.5' },
    { dst: '172.16.0.0/12', gw: '10.244.3.6' },
  ])
  const custom: AttachmentFacts = { ...facts, gateway: '10.244.3.5', ...(routes ? { routes } : {}) }
  const r = buildResult(custom, undefined)
  t.same(r.ips, [{ address: '10.244.3.7/24', gateway: '10.244.3.5', interface: 1 }])
  t.same(r.routes, [{ dst: '0.0.0.0/0', gw: '10.244.3.5' }, ...(routes ?? [])])
  t.same(r.dns.nameservers, ['10.244.3.1'], 'DNS stays on the bridge')
  const req = { containerId: 'c', ifname: 'eth0', netns: '/run/netns/c1', network: 'plexus', labels: {} }
  const v = buildEndpoint(req, custom, 'h1', new Date(0))
  t.equal(v.gateway, '10.244.3.5')
  t.same(v.routes, routes)
  const plain = buildEndpoint(req, facts, 'h1', new Date(0))
  t.equal(plain.gateway, undefined, 'the bridge is not recorded as an override')
  t.equal(plain.routes, undefined)
  const container = { ...healthy.container!, defaultGateways: ['10.244.3.5'] }
  t.same(checkProblems(custom, { ...healthy, container: { ...container, routes: [] } }, undefined), [
    'no route to 192.168.0.0/16 via 10.244.3.5 on eth0',
    'no route to 172.16.0.0/12 via 10.244.3.6 on eth0',
  ])
  const all = [
    { dst: '192.168.0.0/16', gateway: '10.244.3.5' },
    { dst: '172.16.0.0/12', gateway: '10.244.3.6' },
  ]
  t.same(checkProblems(custom, { ...healthy, container: { ...container, routes: all } }, undefined), [])
  t.same(checkProblems(custom, healthy, undefined), [
    'no default route via 10.244.3.5 on eth0',
    'no route to 192.168.0.0/16 via 10.244.3.5 on eth0',
    'no route to 172.16.0.0/12 via 10.244.3.6 on eth0',
  ])
})

t.test('addressing refused by the agent: every problem, CNI 7', async (t) => {
  const subnet = { base: ((10 << 24) | (244 << 16) | (3 << 8)) >>> 0, prefix: 24 }
  const err = t.throws(() =>
    assertAddressing(
      {
        gateway: '10.244.9.1',
        routes: [{ dst: '10.0.0.0/8', gw: '10.244.3.255' }, { dst: '10.244.3.0/24' }],
      },
      subnet,
    ),
  ) as unknown as PlexusError
  t.equal(err.code, 'PLX_ENDPOINTS_BAD_ADDRESSING')
  const cni = toCniError(err).cni
  t.equal(cni.code, CNI.INVALID_CONFIG)
  t.equal(cni.details?.split('; ').length, 3, String(cni.details))
  t.match(cni.msg, /gateway 10\.244\.9\.1 is outside.*routes\[0\]\.gw .*broadcast.*routes\[1\]\.dst/)
  // malformed values (the API is reachable without the plugin) are named before the subnet is looked at
  t.throws(() => assertAddressing({ routes: [{ dst: '10.0.0.1/8' }] }, subnet), { message: /host bits/ })
  t.throws(() => assertAddressing({ gateway: '10.244.3.7' }, subnet, '10.244.3.7'), {
    message: /own address/,
  })
  t.doesNotThrow(() => assertAddressing({ gateway: '10.244.3.7', routes: [{ dst: '10.0.0.0/8' }] }, subnet))
  t.equal(toCniError(new PlexusError('PLX_ATTACH_ROUTE_TAKEN', 'x')).cni.code, CNI.INVALID_CONFIG)
})
