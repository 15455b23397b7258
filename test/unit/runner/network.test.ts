// The network config the runner hands the plexus CNI plugin (pure): the
// group's published ports as runtimeConfig.portMappings (what podman's -p
// hands it), the service's ports and checks as args.plexus, DEL's prevResult;
// one call per network a group joins, eth0 first.
import t from 'tap'
import { attachCalls, interfacesOf, netconf } from '../../../src/runner/network.js'
import type { GroupSpec } from '../../../src/scheduler/spec.js'

const c = { path: ['/opt/cni/bin'], socket: '/run/plexus/plexusd.sock' }

t.test('netconf: published ports, service args, prevResult only when given', async (t) => {
  t.same(netconf(c), {
    cniVersion: '1.1.0',
    name: 'plexus',
    type: 'plexus',
    socket: '/run/plexus/plexusd.sock',
  })
  const ports = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }]
  t.same(netconf(c, { portMappings: ports }).runtimeConfig, { portMappings: ports })
  t.notOk('runtimeConfig' in netconf(c, { portMappings: [] }), 'no ports: no runtimeConfig')
  t.same(netconf(c, { plexus: { checks: [] } }).args, { plexus: { checks: [] } })
  t.same(netconf(c, { prevResult: { ips: [] } }).prevResult, { ips: [] })
})

t.test('interfacesOf: eth0 first in the order of networks; plexus is the cluster network', async (t) => {
  t.same(interfacesOf({}), [{ ifname: 'eth0' }], 'no networks: the cluster network alone')
  t.same(interfacesOf({ networks: ['blue', 'plexus', 'red'] }), [
    { ifname: 'eth0', network: 'blue' },
    { ifname: 'eth1' },
    { ifname: 'eth2', network: 'red' },
  ])
})

t.test('attachCalls: every interface named; service, ports and addressing on eth0 alone', async (t) => {
  const spec: GroupSpec = {
    name: 'g',
    count: 1,
    tasks: [],
    networks: ['blue', 'plexus'],
    service: { name: 'web', ports: [{ port: 80, protocol: 'tcp' }] },
    ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    network: {
      ip: '10.9.0.5',
      mac: '02:42:ac:11:00:09',
      gateway: '10.9.0.6',
      routes: [{ dst: '10.1.0.0/16' }],
    },
  }
  const [eth0, eth1, ...rest] = attachCalls('a1', spec)
  t.same(rest, [])
  t.same(eth0, {
    iface: { ifname: 'eth0', network: 'blue' },
    args: { K8S_POD_NAME: 'a1', PLEXUS_NAME: 'a1', PLEXUS_SERVICE: 'web' },
    plexus: { ports: [{ port: 80, protocol: 'tcp' }], gateway: '10.9.0.6', routes: [{ dst: '10.1.0.0/16' }] },
    cni: { ips: ['10.9.0.5'], mac: '02:42:ac:11:00:09' },
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  })
  t.same(eth1, { iface: { ifname: 'eth1' }, args: { K8S_POD_NAME: 'a1', PLEXUS_NAME: 'a1' } })
  t.same(attachCalls('a2', { name: 'g', count: 1, tasks: [] }), [
    { iface: { ifname: 'eth0' }, args: { K8S_POD_NAME: 'a2', PLEXUS_NAME: 'a2' } },
  ])
})

t.test(
  'netconf per network: a named network is the config`s network field, the cluster network none',
  async (t) => {
    const [blue, cluster] = attachCalls('a1', {
      name: 'g',
      count: 1,
      tasks: [],
      networks: ['blue', 'plexus'],
    })
    t.equal(netconf(c, { ...blue }).network, 'blue')
    t.notOk('network' in netconf(c, { ...cluster }), 'the cluster network: the config as before')
    t.same(netconf(c, { ...blue, prevResult: { ips: [] } }), {
      cniVersion: '1.1.0',
      name: 'plexus',
      type: 'plexus',
      socket: '/run/plexus/plexusd.sock',
      network: 'blue',
      prevResult: { ips: [] },
    })
  },
)
