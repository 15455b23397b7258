import t from 'tap'
import {
  type EndpointView,
  linkEnv,
  linkHostsLines,
  parseLinkSpec,
  resolveLinkTarget,
  withLinkBlock,
} from '../../../src/ports/links.js'
import type { EndpointValue } from '../../../src/store/records.js'
import { endpointValue } from '../../helpers/records.js'

function ep(name: string, host: string, ipv4: string, extra: Partial<EndpointValue> = {}): EndpointView {
  return {
    key: `endpoints/peer-${host}/${name}/eth0`,
    value: endpointValue(name, ipv4, { containerId: name, host, ...extra }),
  }
}

t.test('parseLinkSpec', async (t) => {
  t.same(parseLinkSpec('db'), { target: 'db', alias: 'db' })
  t.same(parseLinkSpec('postgres:db'), { target: 'postgres', alias: 'db' })
  t.throws(() => parseLinkSpec('a:b:c'))
  t.throws(() => parseLinkSpec(''))
  t.throws(() => parseLinkSpec('db:bad alias'))
})

t.test("linkEnv matches Docker's legacy variables", async (t) => {
  const env = linkEnv(
    'web',
    { target: 'postgres', alias: 'my-db' },
    {
      name: 'pg1',
      ipv4: '10.244.1.5',
      host: 'h1',
      ports: [
        { port: 5432, protocol: 'tcp' },
        { port: 53, protocol: 'udp' },
      ],
    },
  )
  t.same(env, {
    MY_DB_NAME: '/web/my-db',
    MY_DB_PORT: 'udp://10.244.1.5:53',
    MY_DB_PORT_53_UDP: 'udp://10.244.1.5:53',
    MY_DB_PORT_53_UDP_ADDR: '10.244.1.5',
    MY_DB_PORT_53_UDP_PORT: '53',
    MY_DB_PORT_53_UDP_PROTO: 'udp',
    MY_DB_PORT_5432_TCP: 'tcp://10.244.1.5:5432',
    MY_DB_PORT_5432_TCP_ADDR: '10.244.1.5',
    MY_DB_PORT_5432_TCP_PORT: '5432',
    MY_DB_PORT_5432_TCP_PROTO: 'tcp',
  })
  t.same(linkEnv('web', { target: 'x', alias: 'x' }, { name: 'x', ipv4: '10.0.0.1', host: 'h', ports: [] }), {
    X_NAME: '/web/x',
  })
})

t.test('resolveLinkTarget prefers a container name, then healthy local service endpoints', async (t) => {
  const eps = [
    ep('db-b', 'h2', '10.244.2.3', { service: 'db', ports: [{ port: 5432, protocol: 'tcp' }] }),
    ep('db-a', 'h1', '10.244.1.3', { service: 'db' }),
    ep('cache', 'h2', '10.244.2.9'),
  ]
  const svc = [{ name: 'db', tags: [], ports: [{ port: 5433, protocol: 'tcp' as const }] }]
  t.equal(resolveLinkTarget('cache', eps, [], svc, 'h1')?.ipv4, '10.244.2.9')
  const local = resolveLinkTarget('db', eps, [], svc, 'h1')
  t.equal(local?.name, 'db-a', 'same host first')
  t.same(local?.ports, [{ port: 5433, protocol: 'tcp' }], 'service ports when the endpoint declares none')
  const remote = resolveLinkTarget('db', eps, [], svc, 'h3')
  t.equal(remote?.name, 'db-a', 'by name when none is local')
  const failing = [{ endpointKey: eps[1]!.key, status: 'critical' as const, output: '', checkedAt: '' }]
  const healthy = resolveLinkTarget('db', eps, failing, svc, 'h1')
  t.equal(healthy?.name, 'db-b', 'unhealthy endpoints are skipped')
  t.same(healthy?.ports, [{ port: 5432, protocol: 'tcp' }])
  t.equal(resolveLinkTarget('nope', eps, [], svc, 'h1'), undefined)
})

t.test('hosts block is replaced in place and other lines are kept', async (t) => {
  const lines = linkHostsLines([
    {
      link: { target: 'postgres', alias: 'db' },
      target: { name: 'pg1', ipv4: '10.244.1.5', host: 'h1', ports: [] },
    },
    { link: { target: 'gone', alias: 'gone' }, target: undefined },
    {
      link: { target: 'cache', alias: 'cache' },
      target: { name: 'cache', ipv4: '10.244.2.9', host: 'h2', ports: [] },
    },
  ])
  t.same(lines, ['10.244.1.5\tdb pg1', '10.244.2.9\tcache'])
  const base = '127.0.0.1\tlocalhost\n10.244.3.2\tweb\n'
  const once = withLinkBlock(base, lines)
  t.equal(once, `${base}# BEGIN plexus links\n10.244.1.5\tdb pg1\n10.244.2.9\tcache\n# END plexus links\n`)
  const moved = withLinkBlock(once, ['10.244.7.7\tdb pg1'])
  t.equal(moved, `${base}# BEGIN plexus links\n10.244.7.7\tdb pg1\n# END plexus links\n`)
  t.equal(withLinkBlock(moved, []), base, 'no links, no block')
})
