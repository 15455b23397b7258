// Volume: fill the host subnet, then 200 ADD/DEL cycles; afterwards no
// address, veth, rule or record may be left. The real plugin binary throughout.
import t from 'tap'
import { run, upCluster } from '../../helpers/fixture.js'
import { allocations, containerNs, hostNs, hostVeths, netconf, plugin, waitReady } from './plugin.js'

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
  const conf = netconf(c, H)
  const usable = 2 ** (32 - Number(prefix)) - 3
  const id = newId()
  // One container, many interfaces: fills the subnet without one namespace per address.
  for (let i = 0; i < usable; i++) {
    const r = plugin(c, H, { command: 'ADD', containerId: id, netns, ifname: `e${i}` }, conf)
    if (r.status !== 0) {
      t.fail(`ADD e${i}: ${r.raw}`)
      break
    }
  }
  t.equal(allocations(c, H).length, usable, 'every address handed out')
  const full = plugin(c, H, { command: 'ADD', containerId: newId(), netns, ifname: 'extra' }, conf)
  t.equal(full.out?.code, 100, full.raw)
  t.match(full.out?.msg, /no free address/)
  t.equal(run('ip', ['-n', nsName, 'link', 'show', 'extra']).status, 1, 'no interface made')
  t.equal(allocations(c, H).length, usable, 'nothing more allocated')
  for (let i = 0; i < usable; i++)
    plugin(c, H, { command: 'DEL', containerId: id, netns, ifname: `e${i}` }, conf)
  t.same(allocations(c, H), [])
  t.same(hostVeths(c, H), [])
})

t.test('200 ADD/DEL cycles leave no address, veth, rule or record behind', async (t) => {
  const conf = netconf(c, H, {
    runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] },
  })
  const nsName = `${c.name}-cyc`
  const netns = containerNs(t, nsName)
  const rules = () => ({
    ipt: run('ip', ['netns', 'exec', hostNs(c, H), 'iptables-save']).stdout.replace(/^#.*$/gm, ''),
    nft: run('ip', ['netns', 'exec', hostNs(c, H), 'nft', 'list', 'ruleset']).stdout,
  })
  const before = rules()
  const ids: string[] = []
  for (let i = 0; i < 200; i++) {
    const id = newId()
    ids.push(id)
    const add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
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
  t.same(rules(), before, 'no rule left')
})
