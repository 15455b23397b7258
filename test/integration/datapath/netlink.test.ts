import { writeFileSync } from 'node:fs'
import { rt } from 'netlink'
import t, { type Test } from 'tap'
import { Netlink, RTPROT_PLEXUS } from '../../../src/datapath/netlink.js'
import { withNetns } from '../../../src/datapath/netns.js'
import { nsExec, tempNetns } from './tempns.js'

/** a Netlink socket inside a fresh namespace, closed on teardown */
function nsNetlink(t: Test, tag = 'nl') {
  const ns = tempNetns(t, tag)
  const nl = Netlink.open(ns.path)
  t.teardown(() => nl.close())
  return { ns, nl }
}

t.test('withNetns: a socket made inside stays in that namespace', async (t) => {
  const { ns, nl } = nsNetlink(t)
  const links = await nl.links()
  t.same(
    links.map((l) => l.name),
    ['lo'],
    "only the new namespace's loopback is visible",
  )
  nsExec(ns.name, 'ip', ['link', 'add', 'br-x', 'type', 'bridge'])
  t.ok(await nl.getLink('br-x'), 'sees a link made by ip in that namespace')
  const host = Netlink.open()
  t.teardown(() => host.close())
  t.equal(await host.getLink('br-x'), undefined, 'the host socket does not')
})

t.test('withNetns: synchronous work only, errors typed', async (t) => {
  const ns = tempNetns(t)
  t.throws(() => withNetns(ns.path, () => Promise.resolve(1)), { code: 'PLX_NETNS_ASYNC' })
  t.throws(() => withNetns('/run/netns/plx-does-not-exist', () => 1), { code: 'PLX_NETNS_NOT_FOUND' })
  t.throws(() => withNetns('/etc/hostname', () => 1), { code: 'PLX_NETNS_INVALID' })
  // a /proc/sys/net write inside lands in that namespace only
  withNetns(ns.path, () => writeFileSync('/proc/sys/net/ipv4/ip_forward', '1'))
  t.equal(nsExec(ns.name, 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), '1')
  t.throws(
    () =>
      withNetns(ns.path, () => {
        throw new Error('boom')
      }),
    /boom/,
    'errors pass through, we are back',
  )
  const host = Netlink.open()
  t.teardown(() => host.close())
  t.equal(await host.getLink('lo').then((l) => l?.name), 'lo')
})

t.test('bridge: create, set, address, errors, delete', async (t) => {
  const { ns, nl } = nsNetlink(t)
  const br = await nl.createBridge('plexus0', { mtu: 1400, mac: '02:00:00:00:00:aa' })
  t.equal(br.kind, 'bridge')
  t.equal(br.mtu, 1400)
  t.equal(br.mac, '02:00:00:00:00:aa')
  await t.rejects(nl.createBridge('plexus0'), { code: 'PLX_NETLINK_EXISTS' })
  await nl.setLink(br.index, { up: true, mtu: 1300, mac: '02:00:00:00:00:bb' })
  const after = await nl.linkByName('plexus0')
  t.equal(after.up, true)
  t.equal(after.mtu, 1300)
  t.equal(after.mac, '02:00:00:00:00:bb')
  await nl.addAddress(br.index, '10.244.1.1', 24)
  await t.rejects(nl.addAddress(br.index, '10.244.1.1', 24), { code: 'PLX_NETLINK_EXISTS' })
  t.same(await nl.addresses(br.index), [{ ifindex: br.index, address: '10.244.1.1', prefixLen: 24 }])
  t.match(nsExec(ns.name, 'ip', ['-4', 'addr', 'show', 'plexus0']), /inet 10\.244\.1\.1\/24/)
  await nl.deleteAddress(br.index, '10.244.1.1', 24)
  t.same(await nl.addresses(br.index), [])
  await nl.setLink(br.index, { name: 'plexus9' })
  t.ok(await nl.getLink('plexus9'), 'renamed')
  await nl.deleteLink('plexus9')
  t.equal(await nl.getLink('plexus9'), undefined)
  await t.rejects(nl.deleteLink('plexus9'), { code: 'PLX_NETLINK_NOT_FOUND' })
  await t.rejects(nl.linkByName('plexus9'), { code: 'PLX_NETLINK_NOT_FOUND' })
})

t.test(
  'a bridge address with a lifetime: extended in place, gone with its route when it runs out',
  async (t) => {
    const { ns, nl } = nsNetlink(t)
    const br = await nl.createBridge('plexus0')
    await nl.setLink(br.index, { up: true })
    await nl.addAddress(br.index, '10.244.1.1', 24)
    t.match(nsExec(ns.name, 'ip', ['-4', 'addr', 'show', 'plexus0']), /valid_lft forever/)
    await nl.setAddressLifetime(br.index, '10.244.1.1', 24, 600)
    t.match(nsExec(ns.name, 'ip', ['-4', 'addr', 'show', 'plexus0']), /valid_lft (600|599)sec preferred_lft/)
    // the live agent sets it again whenever the lease's end moves; here nobody does
    await nl.setAddressLifetime(br.index, '10.244.1.1', 24, 1)
    t.match(nsExec(ns.name, 'ip', ['-4', 'route']), /^10\.244\.1\.0\/24 dev plexus0/m)
    const deadline = Date.now() + 5000
    while ((await nl.addresses(br.index)).length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100))
    t.same(await nl.addresses(br.index), [], 'the kernel removed the address by itself')
    t.notMatch(nsExec(ns.name, 'ip', ['-4', 'route']), /10\.244\.1\.0\/24/, 'and its prefix route')
  },
)

t.test('veth: peer created directly in another namespace, then enslaved', async (t) => {
  const { ns, nl } = nsNetlink(t, 'h')
  const ctr = tempNetns(t, 'c')
  const br = await nl.createBridge('plexus0')
  const v = await nl.createVeth(
    'veth1',
    { name: 'eth0', nsPath: ctr.path, mac: '02:00:00:00:01:01' },
    { mtu: 1450 },
  )
  t.equal(v.kind, 'veth')
  t.equal(v.mtu, 1450)
  t.equal(await nl.getLink('eth0'), undefined, 'the peer is not in the host namespace')
  t.match(nsExec(ctr.name, 'ip', ['link', 'show', 'eth0']), /mtu 1450.*\n.*02:00:00:00:01:01/)
  await nl.setLink(v.index, { master: br.index, up: true })
  t.equal((await nl.linkByName('veth1')).master, br.index)
  await nl.setLink(v.index, { master: 0 })
  t.equal((await nl.linkByName('veth1')).master, undefined, 'detached')
  t.match(
    nsExec(ns.name, 'ip', ['-d', 'link', 'show', 'veth1']),
    /^\d+: veth1@if\d+:[^\n]*\n(?:.*\n)*?\s+veth /m,
    'the host end stays a veth in the host namespace',
  )
})

t.test('vxlan, routes, neighbours, fdb', async (t) => {
  const { ns, nl } = nsNetlink(t)
  // the kernel here has no dummy driver: a veth end serves as underlay device
  nsExec(ns.name, 'ip', ['link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1'])
  nsExec(ns.name, 'ip', ['addr', 'add', '192.0.2.11/24', 'dev', 'under0'])
  nsExec(ns.name, 'ip', ['link', 'set', 'under0', 'up'])
  const under = await nl.linkByName('under0')
  const vx = await nl.createVxlan(
    'plexus.1',
    { vni: 1, port: 8472, local: '192.0.2.11', dev: under.index },
    { mtu: 1450, mac: '02:aa:00:00:00:01' },
  )
  t.equal(vx.kind, 'vxlan')
  t.same(vx.vxlan, { vni: 1, port: 8472, learning: false, local: '192.0.2.11', dev: under.index })
  t.match(
    nsExec(ns.name, 'ip', ['-d', 'link', 'show', 'plexus.1']),
    /vxlan id 1 local 192\.0\.2\.11 dev under0 .*dstport 8472 nolearning/,
  )
  await nl.setLink(vx.index, { up: true })
  await nl.addAddress(vx.index, '10.244.1.0', 32)

  await nl.setNeighbour(vx.index, '10.244.2.0', '02:aa:00:00:00:02')
  await nl.setNeighbour(vx.index, '10.244.2.0', '02:aa:00:00:00:02')
  t.same(
    (await nl.neighbours(vx.index)).filter((n) => n.ip === '10.244.2.0'),
    [{ ifindex: vx.index, ip: '10.244.2.0', mac: '02:aa:00:00:00:02', permanent: true }],
    'replace is idempotent',
  )
  await nl.setFdb(vx.index, '02:aa:00:00:00:02', '192.0.2.12')
  t.same(
    (await nl.fdb(vx.index)).filter((f) => f.mac === '02:aa:00:00:00:02'),
    [{ ifindex: vx.index, mac: '02:aa:00:00:00:02', dst: '192.0.2.12', permanent: true }],
  )
  t.match(
    nsExec(ns.name, 'bridge', ['fdb', 'show', 'dev', 'plexus.1']),
    /02:aa:00:00:00:02 dst 192\.0\.2\.12 self permanent/,
  )

  await nl.addRoute({ dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: vx.index, onlink: true })
  await t.rejects(nl.addRoute({ dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: vx.index, onlink: true }), {
    code: 'PLX_NETLINK_EXISTS',
  })
  const routes = (await nl.routes()).filter((r) => r.protocol === RTPROT_PLEXUS)
  t.same(routes, [
    {
      dst: '10.244.2.0/24',
      gateway: '10.244.2.0',
      oif: vx.index,
      onlink: true,
      protocol: RTPROT_PLEXUS,
      scope: 0,
      table: 254,
    },
  ])
  t.match(
    nsExec(ns.name, 'ip', ['route', 'show', '10.244.2.0/24']),
    /via 10\.244\.2\.0 dev plexus\.1 proto 77 onlink/,
  )
  // replace: host-gw style direct route via the underlay
  await nl.replaceRoute({ dst: '10.244.2.0/24', gateway: '192.0.2.12', oif: under.index })
  t.match(nsExec(ns.name, 'ip', ['route', 'show', '10.244.2.0/24']), /via 192\.0\.2\.12 dev under0 proto 77/)

  await nl.deleteRoute({ dst: '10.244.2.0/24' })
  await t.rejects(nl.deleteRoute({ dst: '10.244.2.0/24' }), { code: 'PLX_NETLINK_NOT_FOUND' })
  await nl.deleteFdb(vx.index, '02:aa:00:00:00:02', '192.0.2.12')
  await nl.deleteNeighbour(vx.index, '10.244.2.0')
  t.same(
    (await nl.fdb(vx.index)).filter((f) => f.mac === '02:aa:00:00:00:02'),
    [],
  )
  t.same(
    (await nl.neighbours(vx.index)).filter((n) => n.ip === '10.244.2.0'),
    [],
  )
  await t.rejects(nl.deleteNeighbour(vx.index, '10.244.2.0'), { code: 'PLX_NETLINK_NOT_FOUND' })
})

t.test('filtered dumps: links by kind or name, one device’s fdb and neighbours', async (t) => {
  const { ns, nl } = nsNetlink(t)
  // what the kernel answered, before the client-side checks: the proof that it filtered
  type Spied<R> = { request: (...a: unknown[]) => Promise<R> }
  const sock = (nl as unknown as { sock: Spied<rt.Message[]> & { socket: Spied<[{ type: number }[]]> } }).sock
  let answered: rt.Message[] = []
  let rawAnswered = 0
  const request = sock.request.bind(sock)
  sock.request = async (...a) => {
    answered = await request(...a)
    return answered
  }
  const raw = sock.socket.request.bind(sock.socket)
  sock.socket.request = async (...a) => {
    const r = await raw(...a)
    rawAnswered = r[0].filter((m) => m.type === rt.MessageType.NEWLINK).length
    return r
  }
  nsExec(ns.name, 'ip', ['link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1'])
  nsExec(ns.name, 'ip', ['addr', 'add', '192.0.2.11/24', 'dev', 'under0'])
  nsExec(ns.name, 'ip', ['link', 'set', 'under0', 'up'])
  // a bridge with a port: the port's own entries are in an unfiltered fdb dump
  const br = await nl.createBridge('plexus0')
  nsExec(ns.name, 'ip', ['link', 'set', 'under1', 'master', 'plexus0', 'up'])
  const under = await nl.linkByName('under0')
  const vx = await nl.createVxlan('plexus.1', { vni: 1, port: 8472, local: '192.0.2.11', dev: under.index })
  await nl.setLink(vx.index, { up: true })
  await nl.setFdb(vx.index, '02:aa:00:00:00:02', '192.0.2.12')
  await nl.setNeighbour(vx.index, '10.244.2.0', '02:aa:00:00:00:02')
  await nl.setNeighbour(br.index, '10.244.1.9', '02:aa:00:00:00:09')

  const dataOf = (m: rt.Message) => (m as { data: { index?: number; ifindex?: number } }).data
  const names = async (pick?: Parameters<Netlink['links']>[0]) =>
    (await nl.links(pick)).map((l) => l.name).sort()
  t.same(await names({ kind: 'vxlan' }), ['plexus.1'])
  t.equal(rawAnswered, 1, 'the kernel answered the vxlan device alone')
  t.same(await names({ kind: 'veth' }), ['under0', 'under1'])
  t.same(await names({ kind: 'no-such-kind' }), [], 'a kind no module registered: none')
  t.equal(rawAnswered, 5, 'which the kernel answers with every link')
  t.same(await names({ where: (l) => l.name.startsWith('plexus') }), ['plexus.1', 'plexus0'], 'by name')
  t.same(await names({ where: (l) => l.index === vx.index }), ['plexus.1'], 'by index')
  t.same(await names({ kind: 'bridge', where: (l) => l.name !== 'plexus0' }), [], 'both must hold')
  t.same(await names(), ['lo', 'plexus.1', 'plexus0', 'under0', 'under1'])

  const port = await nl.linkByName('under1')
  await nl.fdb()
  t.ok(
    answered.some((m) => dataOf(m).ifindex === port.index),
    'an unfiltered fdb dump holds the bridge port’s entries',
  )
  t.same(await nl.fdb(vx.index), [
    { ifindex: vx.index, mac: '02:aa:00:00:00:02', dst: '192.0.2.12', permanent: true },
  ])
  t.ok(
    answered.length > 0 && answered.every((m) => dataOf(m).ifindex === vx.index),
    'fdb: the kernel filtered',
  )

  t.same(await nl.neighbours(vx.index), [
    { ifindex: vx.index, ip: '10.244.2.0', mac: '02:aa:00:00:00:02', permanent: true },
  ])
  t.ok(
    answered.every((m) => dataOf(m).ifindex === vx.index),
    'neighbours: the kernel filtered',
  )
  t.equal((await nl.neighbours()).length, 2, 'unfiltered: both devices’ entries')
})
