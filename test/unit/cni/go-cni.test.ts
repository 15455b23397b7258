// What runtimes built on go-cni (containerd's CRI, and kubelet through it)
// really send: capability args marshalled from Go structs, capitalised. The
// payloads are the ones issue 19 recorded from containerd 1.6.
import t from 'tap'
import { buildAttachRequest, foldKeys, parseNetConf, parseTeardownConf } from '../../../cni/lib/config.js'
import type { CniEnv } from '../../../cni/lib/env.js'
import { CniCode } from '../../../cni/lib/errors.js'

const env: CniEnv = {
  command: 'ADD',
  containerId: 'f00d',
  netns: '/var/run/netns/cni-1234',
  ifname: 'eth0',
  args: { IgnoreUnknown: '1', K8S_POD_NAME: 'web-0' },
  path: '/opt/cni/bin',
}

const conf = (runtimeConfig: string) =>
  JSON.parse(
    `{"cniVersion":"0.4.0","name":"plexus","type":"plexus","capabilities":{"portMappings":true,"dns":true},"runtimeConfig":${runtimeConfig}}`,
  ) as Record<string, unknown>

t.test('containerd CRI portMappings (Go field names) are honoured', async (t) => {
  const raw = conf('{"portMappings":[{"HostPort":18082,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]}')
  const req = buildAttachRequest(parseNetConf(raw), env)
  t.same(req.published, [{ hostPort: 18082, containerPort: 80, protocol: 'tcp' }])
  const withIp = conf(
    '{"portMappings":[{"HostPort":53,"ContainerPort":5353,"Protocol":"UDP","HostIP":"192.0.2.1"}]}',
  )
  t.same(buildAttachRequest(parseNetConf(withIp), env).published, [
    { hostPort: 53, containerPort: 5353, protocol: 'udp', hostIp: '192.0.2.1' },
  ])
})

t.test('containerd CRI dns (Servers, Searches, Options) is honoured, not ignored', async (t) => {
  const raw = conf(
    '{"dns":{"Servers":["10.96.0.10"],"Searches":["default.svc.cluster.local","svc.cluster.local"],"Options":["ndots:5"]}}',
  )
  t.same(buildAttachRequest(parseNetConf(raw), env).dns, {
    nameservers: ['10.96.0.10'],
    search: ['default.svc.cluster.local', 'svc.cluster.local'],
    options: ['ndots:5'],
  })
})

t.test('both spellings, any case, for every capability; the lower-case spelling still works', async (t) => {
  const lower = conf(
    '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"dns":{"servers":["10.0.0.2"]},"ips":["10.244.1.9"],"mac":"02:00:00:00:00:09"}',
  )
  const upper = conf(
    '{"PortMappings":[{"hostport":8080,"CONTAINERPORT":80,"Protocol":"tcp"}],"DNS":{"SERVERS":["10.0.0.2"]},"IPs":["10.244.1.9"],"Mac":"02:00:00:00:00:09"}',
  )
  const a = buildAttachRequest(parseNetConf(lower), env)
  const b = buildAttachRequest(parseNetConf(upper), env)
  t.same(b, a, 'same request from either spelling')
  t.same(a.published, [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }])
  t.equal(a.ip, '10.244.1.9')
  t.equal(a.mac, '02:00:00:00:00:09')
  t.same(a.dns?.nameservers, ['10.0.0.2'])
  // bandwidth is for a chained plugin: accepted in either spelling and passed over
  const bw = conf('{"Bandwidth":{"IngressRate":1000,"IngressBurst":10,"EgressRate":1000,"EgressBurst":10}}')
  t.doesNotThrow(() => parseNetConf(bw))
})

t.test('foldKeys: exact spelling wins, unknown keys stay', async (t) => {
  t.same(foldKeys({ HostPort: 1, hostPort: 2, Other: 3 }, ['hostPort']), { hostPort: 2, Other: 3 })
  t.same(foldKeys({ HOSTPORT: 1 }, ['hostPort']), { hostPort: 1 })
})

t.test('a wrong value is still refused on ADD, naming the field', async (t) => {
  t.throws(() => parseNetConf(conf('{"portMappings":[{"HostPort":18082,"Protocol":"tcp"}]}')), {
    code: CniCode.INVALID_CONFIG,
    msg: /portMappings\[0\]\.containerPort/,
  })
})

t.test('DEL and GC read what they need from a malformed config and say what they skipped', async (t) => {
  const socket = '/run/plexus-test/x.sock'
  const bad = JSON.stringify({
    ...conf('{"portMappings":[{"HostPort":"x","Protocol":"sctp"}]}'),
    socket,
    prevResult: { ips: 'not a list' },
  })
  const d = parseTeardownConf(bad)
  t.equal(d.socket, socket, 'socket kept')
  t.equal(d.name, 'plexus')
  t.equal(d.cniVersion, '0.4.0')
  t.match(d.skipped.join(' '), /portMappings|prevResult/)

  const garbage = parseTeardownConf('{"cniVersion": 7, "socket": 3')
  t.equal(garbage.socket, '/run/plexus/plexusd.sock', 'unreadable: the default socket')
  t.ok(garbage.skipped.length, 'says what it skipped')

  const gc = parseTeardownConf(
    JSON.stringify({ ...conf('{}'), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 7 }] }),
  )
  t.equal(gc.validAttachments, null, 'a malformed keep-list is not an empty one')
  const good = parseTeardownConf(
    JSON.stringify({
      ...conf('{}'),
      cniVersion: '1.1.0',
      'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }],
    }),
  )
  t.same(good.validAttachments, [{ containerId: 'a', ifname: 'eth0' }])
  t.same(good.skipped, [])
})
