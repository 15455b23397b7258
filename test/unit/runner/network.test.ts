// The network config the runner hands the plexus CNI plugin (pure): the
// group's published ports as runtimeConfig.portMappings (what podman's -p
// hands it), the service's ports and checks as args.plexus, DEL's prevResult.
import t from 'tap'
import { netconf } from '../../../src/runner/network.js'

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
