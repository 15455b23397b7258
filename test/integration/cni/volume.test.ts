// Volume: fill the host subnet; the next ADD is refused with code 100 and
// leaves nothing behind. (The 200 ADD/DEL cycles with a published port run in
// mountns.test.ts, from another mount namespace as containerd-in-a-container
// drives the plugin: one long leak check instead of two.)
import t from 'tap'
import { createClient } from '../../../src/cli/client.js'
import { run, upCluster } from '../../helpers/fixture.js'
import { allocations, containerNs, hostVeths, netconf, plugin, socketOf, waitReady } from './plugin.js'

t.setTimeout(900_000)
// /26 host subnets: filling one is the same check as filling a /24, in a quarter of the ADDs
const c = upCluster(t, {
  hosts: 1,
  prefix: 'cv',
  agentConfig: { network: { seed: { Network: '10.244.0.0/16', SubnetLen: 26, Backend: { Type: 'vxlan' } } } },
})
const H = 'h1'
const { subnet } = await waitReady(c, H)
const prefix = subnet.split('/')[1]
let seq = 0
const newId = () => `vol-${process.pid}-${seq++}`
const records = () => c.plexctlJson<unknown[]>(H, ['endpoints'])

t.test('an exhausted subnet is refused (code 100) and leaves nothing behind', async (t) => {
  const nsName = `${c.name}-full`
  const netns = containerNs(t, nsName)
  const api = createClient(socketOf(c, H))
  const usable = 2 ** (32 - Number(prefix)) - 3
  const id = newId()
  // Filling is set-up, done through the API the plugin calls (the plugin's
  // start-up would make it minutes); one container with many interfaces.
  const key = (i: number) => ({ containerId: id, ifname: `e${i}` })
  for (let i = 0; i < usable; i++) {
    await api.call('POST', '/v1/cni/add', { ...key(i), netns, network: 'plexus', labels: {} })
  }
  t.equal(allocations(c, H).length, usable, 'every address handed out')
  const full = plugin(c, H, { command: 'ADD', containerId: newId(), netns, ifname: 'extra' }, netconf(c, H))
  t.equal(full.status, 1)
  t.equal(full.out?.code, 100, full.raw)
  t.match(full.out?.msg, /no free address/)
  t.equal(run('ip', ['-n', nsName, 'link', 'show', 'extra']).status, 1, 'no interface made')
  t.equal(allocations(c, H).length, usable, 'nothing more allocated')
  for (let i = 0; i < usable; i++) await api.call('POST', '/v1/cni/del', key(i))
  t.same(allocations(c, H), [], 'no address')
  t.same(hostVeths(c, H), [], 'no veth')
  t.same(records(), [], 'no endpoint record')
})
