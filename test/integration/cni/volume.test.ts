// Volume: fill the host subnet, then 200 ADD/DEL cycles through the real
// plugin binary; afterwards no address, veth, rule or record may be left.
import t from 'tap'
import { createClient } from '../../../src/cli/client.js'
import { eventually, run, upCluster } from '../../helpers/fixture.js'
import {
  allocations,
  containerNs,
  hostNs,
  hostVeths,
  netconf,
  plugin,
  socketOf,
  waitReady,
} from './plugin.js'

// 400 plugin runs: minutes on a loaded two-core machine
t.setTimeout(900_000)
const c = upCluster(t, { hosts: 1, prefix: 'cv' })
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
  t.same(allocations(c, H), [])
  t.same(hostVeths(c, H), [])
})

t.test('200 ADD/DEL cycles leave no address, veth, rule or record behind', async (t) => {
  const conf = netconf(c, H, {
    runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] },
  })
  const nsName = `${c.name}-cyc`
  const netns = containerNs(t, nsName)
  // Rules for the published port (and its container) must go with each DEL.
  const leftovers = () =>
    [
      run('ip', ['netns', 'exec', hostNs(c, H), 'iptables-save']).stdout,
      run('ip', ['netns', 'exec', hostNs(c, H), 'nft', 'list', 'ruleset']).stdout,
    ]
      .join('\n')
      .split('\n')
      .filter((l) => l.includes('18080'))
  for (let i = 0; i < 200; i++) {
    const id = newId()
    const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
    if (i === 0)
      t.ok(
        await eventually(() => leftovers().length > 0, 5000),
        'the published port has rules while attached',
      )
    const del = plugin(c, H, { command: 'DEL', containerId: id, netns }, conf)
    if (add.status !== 0 || del.status !== 0) {
      t.fail(`cycle ${i}: ADD ${add.raw} DEL ${del.raw}`)
      break
    }
  }
  t.same(allocations(c, H), [], 'no address')
  t.same(hostVeths(c, H), [], 'no veth')
  t.equal(run('ip', ['-n', nsName, 'link', 'show', 'eth0']).status, 1, 'no container interface')
  t.same(records(), [], 'no endpoint record')
  await eventually(() => leftovers().length === 0, 5000)
  t.same(leftovers(), [], 'no rule left')
})
