import t from 'tap'
import { buildAttachRequest, decodeStdin, parseNetConf } from '../../../cni/lib/config.js'
import type { CniEnv } from '../../../cni/lib/env.js'
import { CniCode } from '../../../cni/lib/errors.js'
import { SUPPORTED_VERSIONS } from '../../../cni/lib/version.js'
import { normalizeMac } from '../../../src/lib/addressing.js'

const minimal = { cniVersion: '1.1.0', name: 'plexus', type: 'plexus' }
const env = (args: Record<string, string> = {}): CniEnv => ({
  command: 'ADD',
  containerId: 'c0ffee',
  netns: '/var/run/netns/c',
  ifname: 'eth0',
  args,
  path: '/opt/cni/bin',
})

t.test('stdin decoding', async (t) => {
  t.throws(() => decodeStdin(''), { code: CniCode.DECODE, msg: /no network configuration/ })
  t.throws(() => decodeStdin('  \n'), { code: CniCode.DECODE })
  t.throws(() => decodeStdin('{"cniVersion":'), { code: CniCode.DECODE, msg: /not valid JSON/ })
  t.throws(() => decodeStdin('[1]'), { code: CniCode.DECODE, msg: /object/ })
  t.same(decodeStdin('{"a":1}'), { a: 1 })
})

t.test('minimal config in every version gets the defaults', async (t) => {
  for (const v of SUPPORTED_VERSIONS) {
    const c = parseNetConf({ ...minimal, cniVersion: v })
    t.equal(c.cniVersion, v)
    t.equal(c.socket, '/run/plexus/plexusd.sock')
    t.same(c.labels, {})
  }
})

t.test('required and typed fields', async (t) => {
  t.throws(() => parseNetConf({ ...minimal, type: 'bridge' }), { code: CniCode.INVALID_CONFIG, msg: /type/ })
  t.throws(() => parseNetConf({ cniVersion: '1.0.0', type: 'plexus' }), {
    code: CniCode.INVALID_CONFIG,
    msg: /name/,
  })
  t.throws(() => parseNetConf({ ...minimal, name: 'bad name' }), { code: CniCode.INVALID_CONFIG })
  t.throws(() => parseNetConf({ ...minimal, socket: 'rel.sock' }), {
    code: CniCode.INVALID_CONFIG,
    msg: /absolute/,
  })
  t.throws(() => parseNetConf({ ...minimal, tags: 'a' }), { code: CniCode.INVALID_CONFIG, msg: /tags/ })
  t.throws(() => parseNetConf({ ...minimal, cniVersion: '0.2.0' }), { code: CniCode.INCOMPATIBLE_VERSION })
})

t.test('unsupported fields name key and value (code 2)', async (t) => {
  t.throws(() => parseNetConf({ ...minimal, bridge: 'br0' }), {
    code: CniCode.UNSUPPORTED_FIELD,
    msg: /"bridge".*"br0"/,
  })
  t.throws(() => parseNetConf({ ...minimal, ipam: { type: 'host-local' } }), {
    code: CniCode.UNSUPPORTED_FIELD,
  })
  t.doesNotThrow(() => parseNetConf({ ...minimal, ipam: {}, capabilities: { portMappings: true } }))
})

t.test('runtimeConfig capabilities', async (t) => {
  const c = parseNetConf({
    ...minimal,
    runtimeConfig: {
      portMappings: [
        { hostPort: 8080, containerPort: 80, protocol: 'TCP', hostIP: '' },
        { hostPort: 0, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.11' },
      ],
      dns: { servers: ['10.0.0.10'], searches: ['ns.svc.cluster.local'], options: ['ndots:5'] },
      ips: ['10.244.1.9/24'],
      mac: '0A:58:0A:F4:01:09',
      bandwidth: { ingressRate: 1 },
    },
  })
  t.same(c.runtime.portMappings, [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostPort: 0, containerPort: 53, protocol: 'udp', hostIp: '192.0.2.11' },
  ])
  t.same(c.runtime.dns, {
    nameservers: ['10.0.0.10'],
    search: ['ns.svc.cluster.local'],
    options: ['ndots:5'],
  })
  t.same(c.runtime.ips, ['10.244.1.9/24'])
  t.equal(c.runtime.mac, '0a:58:0a:f4:01:09')
})

t.test('bad capability values are invalid config (7)', async (t) => {
  const bad = [
    { portMappings: [{ hostPort: 70000, containerPort: 80 }] },
    { portMappings: [{ hostPort: 80, containerPort: 0 }] },
    { portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'icmp' }] },
    { portMappings: [{ hostPort: 80, containerPort: 80, hostIP: 'localhost' }] },
    { ips: ['10.244.1.300'] },
    { ips: ['fd00::1/64'] },
    { ips: ['10.244.1.2', '10.244.1.3'] },
    { ips: ['10.244.1.2/40'] },
    { mac: '01:00:5e:00:00:01' },
    { mac: 'zz:00:00:00:00:00' },
    { dns: { servers: ['not-an-ip'] } },
    { portMappings: {} },
  ]
  for (const rc of bad) {
    t.throws(
      () => parseNetConf({ ...minimal, runtimeConfig: rc }),
      { code: CniCode.INVALID_CONFIG },
      JSON.stringify(rc),
    )
  }
})

t.test('GC attachments, both spellings', async (t) => {
  const a = [{ containerID: 'c1', ifname: 'eth0' }]
  t.same(parseNetConf({ ...minimal, 'cni.dev/valid-attachments': a }).validAttachments, [
    { containerId: 'c1', ifname: 'eth0' },
  ])
  t.same(parseNetConf({ ...minimal, 'cni.dev/attachments': a }).validAttachments?.length, 1)
  t.throws(() => parseNetConf({ ...minimal, 'cni.dev/valid-attachments': [{ ifname: 'eth0' }] }), {
    code: CniCode.INVALID_CONFIG,
  })
})

t.test('prevResult is read in the config version', async (t) => {
  const c = parseNetConf({
    ...minimal,
    cniVersion: '0.4.0',
    prevResult: { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.1.0.2/24' }], dns: {} },
  })
  t.same(c.prevResult?.ips, [{ address: '10.1.0.2/24' }])
})

t.test('attach request: name, labels, service, tags, ports, static ip, mac, dns', async (t) => {
  const conf = parseNetConf({
    ...minimal,
    service: 'web',
    tags: ['a'],
    labels: { tier: 'front' },
    dns: { nameservers: ['10.244.0.1'], domain: 'x' },
    args: {
      cni: { labels: [{ key: 'team', value: 'blue' }], ips: ['10.244.1.5'] },
      plexus: {
        ports: ['80/tcp', { port: 53, protocol: 'udp', name: 'dns' }],
        checks: [{ name: 'up', type: 'tcp', port: 80 }],
      },
      podman_labels: { ignored: 'yes' },
    },
    runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
  })
  const r = buildAttachRequest(
    conf,
    env({ IgnoreUnknown: '1', K8S_POD_NAME: 'web-1', K8S_POD_NAMESPACE: 'prod', FOO: 'x' }),
  )
  t.same(r, {
    containerId: 'c0ffee',
    ifname: 'eth0',
    netns: '/var/run/netns/c',
    network: 'plexus',
    labels: { tier: 'front', team: 'blue' },
    name: 'web-1',
    namespace: 'prod',
    service: 'web',
    tags: ['a'],
    ports: [
      { port: 80, protocol: 'tcp' },
      { port: 53, protocol: 'udp', name: 'dns' },
    ],
    checks: [{ name: 'up', type: 'tcp', port: 80 }],
    published: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ip: '10.244.1.5',
    dns: { nameservers: ['10.244.0.1'], domain: 'x' },
  })
})

t.test('args.plexus.checks: the plugin passes a list of objects on and refuses anything else', async (t) => {
  for (const checks of ['up', [1], Array.from({ length: 17 }, () => ({}))])
    t.throws(() => parseNetConf({ ...minimal, args: { plexus: { checks } } }), {
      message: /args.plexus.checks must be an array of at most 16 check objects/,
    })
})

t.test('per-container sources beat per-network ones', async (t) => {
  const conf = parseNetConf({
    ...minimal,
    service: 'web',
    args: { cni: { ips: ['10.244.1.5'], mac: '02:00:00:00:00:01' } },
    runtimeConfig: { ips: ['10.244.1.6/24'] },
  })
  const r = buildAttachRequest(
    conf,
    env({
      PLEXUS_NAME: 'api-0',
      K8S_POD_NAME: 'pod',
      PLEXUS_SERVICE: 'api',
      PLEXUS_TAGS: 'x,y',
      PLEXUS_LABEL: 'a=1,b=2=3',
      PLEXUS_EXPOSE: '8080/tcp,53/udp',
      MAC: '02:00:00:00:00:02',
      IP: '10.244.1.7',
    }),
  )
  t.equal(r.name, 'api-0')
  t.equal(r.service, 'api')
  t.same(r.tags, ['x', 'y'])
  t.same(r.labels, { a: '1', b: '2=3' })
  t.same(r.ports, [
    { port: 8080, protocol: 'tcp' },
    { port: 53, protocol: 'udp' },
  ])
  t.equal(r.ip, '10.244.1.6/24', 'runtimeConfig.ips wins')
  t.equal(r.mac, '02:00:00:00:00:02', 'CNI_ARGS MAC beats args.cni.mac')
})

t.test('CNI_ARGS: unknown keys refused unless IgnoreUnknown; bad values are code 4', async (t) => {
  const conf = parseNetConf(minimal)
  t.throws(() => buildAttachRequest(conf, env({ FOO: '1' })), {
    code: CniCode.INVALID_ENV,
    msg: /FOO.*IgnoreUnknown/,
  })
  t.doesNotThrow(() => buildAttachRequest(conf, env({ FOO: '1', IgnoreUnknown: 'true' })))
  t.throws(() => buildAttachRequest(conf, env({ IP: '10.1.1' })), { code: CniCode.INVALID_ENV })
  t.throws(() => buildAttachRequest(conf, env({ MAC: 'ff:ff:ff:ff:ff:ff' })), { code: CniCode.INVALID_ENV })
  t.throws(() => buildAttachRequest(conf, env({ PLEXUS_EXPOSE: '80/sctp' })), { code: CniCode.INVALID_ENV })
  t.throws(() => buildAttachRequest(conf, env({ PLEXUS_LABEL: 'novalue' })), { code: CniCode.INVALID_ENV })
  t.throws(() => buildAttachRequest(conf, env({ K8S_POD_NAME: 'has space' })), { code: CniCode.INVALID_ENV })
})

t.test('mac normalisation', async (t) => {
  t.equal(normalizeMac('02-AA-bb-00-00-01'), '02:aa:bb:00:00:01')
  t.equal(normalizeMac('03:00:00:00:00:00'), undefined, 'multicast bit')
})

t.test('service, tags and port names must be DNS labels', async (t) => {
  t.throws(() => parseNetConf({ ...minimal, service: 'Web_1' }), { code: CniCode.INVALID_CONFIG })
  t.throws(() => parseNetConf({ ...minimal, tags: ['ok', 'Not OK'] }), { code: CniCode.INVALID_CONFIG })
  const conf = parseNetConf(minimal)
  t.throws(() => buildAttachRequest(conf, env({ PLEXUS_SERVICE: 'API' })), { code: CniCode.INVALID_ENV })
  t.throws(() => buildAttachRequest(conf, env({ PLEXUS_TAGS: 'a,b_c' })), { code: CniCode.INVALID_ENV })
})

t.test('addressing: gateway and routes reach the attach request; CNI_ARGS GATEWAY wins', async (t) => {
  const conf = parseNetConf({
    ...minimal,
    args: {
      cni: { mac: '02:00:00:00:00:09' },
      plexus: {
        gateway: '10.244.1.5',
        routes: [{ dst: '192.168.0.0/16', gw: '10.244.1.6' }, { dst: '172.16.0.0/12' }],
      },
    },
  })
  const r = buildAttachRequest(conf, env())
  t.equal(r.gateway, '10.244.1.5')
  t.same(r.routes, [{ dst: '192.168.0.0/16', gw: '10.244.1.6' }, { dst: '172.16.0.0/12' }])
  t.equal(r.mac, '02:00:00:00:00:09')
  t.equal(buildAttachRequest(conf, env({ GATEWAY: '10.244.1.7' })).gateway, '10.244.1.7')
  t.equal(buildAttachRequest(parseNetConf(minimal), env()).gateway, undefined)
})

t.test('addressing: every invalid field in one error, code 7', async (t) => {
  const err = t.throws(() =>
    parseNetConf({
      ...minimal,
      args: {
        cni: { ips: ['10.244.1.300'], mac: 'zz' },
        plexus: {
          gateway: 'gw',
          routes: [
            { dst: '10.1.0.0/33' },
            { dst: '192.168.0.0/16', gw: '10.244.1' },
            { dst: '192.168.0.0/16' },
          ],
        },
      },
      runtimeConfig: { mac: '01:00:00:00:00:00' },
    }),
  ) as unknown as { code: number; msg: string; details: string }
  t.equal(err.code, CniCode.INVALID_CONFIG)
  const fields = [
    'args.cni.ips',
    'args.cni.mac',
    'args.plexus.gateway',
    'args.plexus.routes[0].dst',
    'args.plexus.routes[1].gw',
    'args.plexus.routes[2].dst',
    'runtimeConfig.mac',
  ]
  for (const f of fields) t.match(err.msg, f, `names ${f}`)
  t.equal(err.details.split('\n').length, fields.length, 'one line per problem')
})

t.test('addressing in CNI_ARGS: every invalid key in one error, code 4', async (t) => {
  const conf = parseNetConf(minimal)
  const err = t.throws(() =>
    buildAttachRequest(conf, env({ IP: '10.1.1', MAC: 'ff:ff:ff:ff:ff:ff', GATEWAY: '300.1.1.1' })),
  ) as unknown as { code: number; msg: string }
  t.equal(err.code, CniCode.INVALID_ENV)
  t.match(err.msg, /^CNI_ARGS: IP .*; MAC .*; GATEWAY /)
})

t.test('a named (macvlan) network from the config or CNI_ARGS PLEXUS_NETWORK', async (t) => {
  t.equal(buildAttachRequest(parseNetConf(minimal), env()).namedNetwork, undefined, 'the overlay by default')
  const conf = parseNetConf({ ...minimal, network: 'lan' })
  t.equal(buildAttachRequest(conf, env()).namedNetwork, 'lan')
  t.equal(buildAttachRequest(conf, env({ PLEXUS_NETWORK: 'lan2' })).namedNetwork, 'lan2', 'CNI_ARGS wins')
  t.throws(() => parseNetConf({ ...minimal, network: 'Bad_Name' }), { code: CniCode.INVALID_CONFIG })
  t.throws(() => buildAttachRequest(conf, env({ PLEXUS_NETWORK: 'Bad_Name' })), { code: CniCode.INVALID_ENV })
})
