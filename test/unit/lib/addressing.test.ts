import t from 'tap'
import {
  type AddressingProblem,
  MAX_ROUTES,
  readGateway,
  readMac,
  readRoutes,
  readStaticIp,
  subnetProblems,
} from '../../../src/lib/addressing.js'

// 10.244.3.0/24 as base and prefix
const subnet = { base: ((10 << 24) | (244 << 16) | (3 << 8)) >>> 0, prefix: 24 }

t.test('well-formed values pass and come back', async (t) => {
  const out: AddressingProblem[] = []
  t.equal(readGateway('gateway', '10.244.3.5', out), '10.244.3.5')
  t.same(readRoutes('routes', [{ dst: '192.168.0.0/16', gw: '10.244.3.6' }, { dst: '172.16.1.0/24' }], out), [
    { dst: '192.168.0.0/16', gw: '10.244.3.6' },
    { dst: '172.16.1.0/24' },
  ])
  t.equal(readMac('mac', '02-AA-00-00-00-01', out), '02:aa:00:00:00:01')
  t.equal(readStaticIp('ip', '10.244.3.9/24', out), '10.244.3.9/24')
  t.same(out, [])
})

t.test('every malformed route is named, with its field, and no routes come back', async (t) => {
  const out: AddressingProblem[] = []
  const routes = readRoutes(
    'routes',
    [
      { dst: '192.168.1.1/16' },
      { dst: 'nope', gw: '10.244.3.300' },
      { dst: '0.0.0.0/0' },
      { dst: '172.16.0.0/12', gw: 'fd00::1' },
      { dst: '172.16.0.0/12', mtu: 1400 },
      'x',
      { dst: '10.1.0.0/16', gw: '224.0.0.1' },
    ],
    out,
  )
  t.equal(routes, undefined)
  t.same(
    out.map((p) => p.field),
    [
      'routes[0].dst',
      'routes[1].dst',
      'routes[1].gw',
      'routes[2].dst',
      'routes[3].gw',
      'routes[4].mtu',
      'routes[4].dst',
      'routes[5]',
      'routes[6].gw',
    ],
  )
  t.match(out[0]?.message, /host bits set \(the network is 192\.168\.0\.0\/16\)/)
  t.match(out[3]?.message, /default route.*"gateway"/)
  t.match(out[6]?.message, /also the dst of routes\[3\]/)
  t.match(out[8]?.message, /not a unicast address/)
})

t.test('routes: an array, at most MAX_ROUTES', async (t) => {
  const out: AddressingProblem[] = []
  readRoutes('routes', { dst: '10.0.0.0/8' }, out)
  const many = Array.from({ length: MAX_ROUTES + 1 }, (_, i) => ({ dst: `10.${i}.0.0/16` }))
  readRoutes('routes', many, out)
  t.match(out, [
    { message: /must be an array/ },
    { message: `asks for ${MAX_ROUTES + 1} routes, at most ${MAX_ROUTES}` },
  ])
})

t.test('gateway, mac and address syntax', async (t) => {
  const out: AddressingProblem[] = []
  readGateway('gateway', '10.244.3', out)
  readGateway('gateway', 7, out)
  readGateway('gateway', '0.0.0.0', out)
  readMac('mac', '01:00:5e:00:00:01', out)
  readStaticIp('ip', 'fd00::1', out)
  t.same(
    out.map((p) => p.field),
    ['gateway', 'gateway', 'gateway', 'mac', 'ip'],
  )
})

t.test('against the host subnet: every reason at once', async (t) => {
  const problems = subnetProblems(
    {
      ip: '10.244.3.255',
      gateway: '10.244.4.1',
      routes: [
        { dst: '10.244.3.0/24' },
        { dst: '192.168.0.0/16', gw: '10.244.3.0' },
        { dst: '172.16.0.0/12', gw: '10.244.3.255' },
        { dst: '10.9.0.0/16', gw: '10.244.3.1' },
      ],
    },
    subnet,
  )
  t.same(
    problems.map((p) => p.field),
    ['ip', 'gateway', 'routes[0].dst', 'routes[1].gw', 'routes[2].gw'],
  )
  t.match(problems[0]?.message, /broadcast address of 10\.244\.3\.0\/24/)
  t.match(problems[1]?.message, /outside this host's subnet 10\.244\.3\.0\/24: the container cannot reach it/)
  t.match(problems[2]?.message, /own subnet/)
  t.match(problems[3]?.message, /network address/)
  t.same(subnetProblems({ ip: '10.244.3.1' }, subnet), [
    { field: 'ip', message: '10.244.3.1 is the gateway address of 10.244.3.0/24' },
  ])
  t.same(subnetProblems({ ip: '10.244.3.9/16' }, subnet), [
    { field: 'ip', message: '10.244.3.9/16 has prefix length /16, the host subnet is /24' },
  ])
  t.same(subnetProblems({ ip: '10.244.3.9', gateway: '10.244.3.9' }, subnet), [
    { field: 'gateway', message: "10.244.3.9 is the container's own address" },
  ])
  t.same(subnetProblems({ routes: [{ dst: '10.0.0.0/8', gw: '10.244.3.20' }] }, subnet, '10.244.3.20'), [
    { field: 'routes[0].gw', message: "10.244.3.20 is the container's own address" },
  ])
  t.same(
    subnetProblems({ ip: '10.244.3.9', gateway: '10.244.3.5', routes: [{ dst: '10.0.0.0/8' }] }, subnet),
    [],
  )
})
