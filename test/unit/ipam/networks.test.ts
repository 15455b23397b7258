// Named (macvlan) networks: the rules of a network record, the split of its
// range into blocks, and NamedNetworks on three real stores joined by gossip:
// disjoint blocks, and nothing left once the network is deleted.
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createSigner, verifyRecordSignature } from '../../../src/cluster/identity.js'
import { cidrOf, containsCidr, formatCidr, overlaps } from '../../../src/ipam/cidr.js'
import { chooseSubnet, validLeases } from '../../../src/ipam/leases.js'
import {
  blockConfig,
  netLeaseKeys,
  networkKey,
  parseMacvlanNetwork,
  shimAddress,
} from '../../../src/ipam/macvlan.js'
import { createNamedNetwork, namedNetworksReport, removeNamedNetwork } from '../../../src/ipam/network.js'
import { NamedNetworks } from '../../../src/ipam/networks.js'
import { isPlexusError } from '../../../src/lib/errors.js'
import { Metrics } from '../../../src/lib/metrics.js'
import { LocalStore } from '../../../src/store/store.js'
import type { StoreRecord } from '../../../src/store/types.js'

const LAN = { name: 'lan', driver: 'macvlan', subnet: '192.168.50.0/24', range: '192.168.50.128/25' }

function problems(input: unknown): string[] {
  try {
    parseMacvlanNetwork(input)
    return []
  } catch (err) {
    if (!isPlexusError(err, 'PLX_IPAM_NETWORK_INVALID')) throw err
    return (err.details as { problems: string[] }).problems
  }
}

t.test('a network is normalized with Docker defaults', async (t) => {
  t.same(parseMacvlanNetwork(LAN), {
    name: 'lan',
    driver: 'macvlan',
    subnet: '192.168.50.0/24',
    range: '192.168.50.128/25',
    gateway: '192.168.50.1',
    blockLen: 26,
  })
  t.match(
    parseMacvlanNetwork({
      ...LAN,
      parent: 'eth1',
      gateway: '192.168.50.254',
      range: '192.168.50.0/26',
      blockLen: 28,
    }),
    {
      parent: 'eth1',
      gateway: '192.168.50.254',
      blockLen: 28,
    },
  )
  // a /26 range with the default block would be one block: the block is halved so hosts can share it
  t.equal(parseMacvlanNetwork({ ...LAN, range: '192.168.50.64/26' }).blockLen, 27)
})

t.test('every problem is named at once', async (t) => {
  t.same(problems('x'), ['must be a JSON object'])
  const all = problems({
    name: 'Bad_Name',
    driver: 'bridge',
    parent: 'eth0/1',
    subnet: '192.168.50.1/24',
    range: '10.0.0.0/25',
    gateway: 'nope',
    blockLen: 40,
    extra: 1,
  })
  t.equal(all.length, 7, all.join('\n'))
  t.match(all.join('\n'), /extra is not a known field/)
  t.match(all.join('\n'), /name "Bad_Name" must be a DNS label/)
  t.match(all.join('\n'), /driver "bridge" is not supported/)
  t.match(all.join('\n'), /parent "eth0\/1" is not an interface name/)
  t.match(all.join('\n'), /subnet: .*host bits set/)
  t.match(all.join('\n'), /gateway "nope" is not an IPv4 address/)
  t.match(all.join('\n'), /blockLen must be an integer from 1 to 30/)
  t.match(problems({ ...LAN, range: '10.0.0.0/25' }), [/range 10.0.0.0\/25 is not inside subnet/])
  // the subnet's network address is no block's address to hand out, so a range may start there
  t.same(problems({ ...LAN, range: '192.168.50.0/25', gateway: '192.168.50.254' }), [])
  t.match(problems({ ...LAN, range: '192.168.50.128/25', gateway: '192.168.50.200' }), [
    /gateway .* is inside the range/,
  ])
  t.match(problems({ ...LAN, gateway: '192.168.51.1' }), [
    /gateway 192.168.51.1 is not a host address of subnet/,
  ])
  t.match(problems({ ...LAN, blockLen: 25 }), [/blockLen \/25 does not split range/])
  t.match(problems({ ...LAN, name: 'plexus' }), [/the cluster network/])
})

t.test('the range is split into blocks, each host claims one, other networks are not seen', async (t) => {
  const net = parseMacvlanNetwork(LAN)
  const cfg = blockConfig(net)
  t.match(cfg, {
    Network: '192.168.50.128/25',
    SubnetLen: 26,
    SubnetMin: '192.168.50.128',
    SubnetMax: '192.168.50.192',
  })
  const keys = netLeaseKeys('lan')
  const now = Date.now()
  const lease = (peer: string, subnet: string, key = keys.key(peer)): StoreRecord => ({
    key,
    value: {
      subnet,
      publicIp: '192.168.50.11',
      hostname: peer.toLowerCase(),
      backend: { type: 'macvlan' },
      claimedAt: now - 10,
    },
    owner: peer,
    version: { wall: now - 10, logical: 0 },
    ttlMs: 60_000,
    tombstone: false,
    sig: '',
  })
  const first = chooseSubnet(cfg, [], () => 0)
  t.same('subnet' in first && formatCidr(first.subnet), '192.168.50.128/26')
  const view = validLeases(
    [
      lease('A', '192.168.50.128/26'),
      lease('B', '192.168.50.128/26'),
      lease('C', '192.168.50.128/26', netLeaseKeys('other').key('C')),
      lease('D', '192.168.50.0/26'),
    ],
    cfg,
    now,
    keys,
  )
  t.same(
    view.valid.map((l) => `${l.peerId} ${l.value.subnet}`),
    ['A 192.168.50.128/26'],
  )
  t.same(
    view.invalid.map((i) => `${i.owner} ${i.kind}`),
    ['B conflict', 'D outside-network'],
  )
  const second = chooseSubnet(cfg, view.valid, () => 0)
  t.same('subnet' in second && formatCidr(second.subnet), '192.168.50.192/26')
  const full = chooseSubnet(cfg, [...view.valid, { ...view.valid[0]!, subnet: cidrOf('192.168.50.192/26') }])
  t.ok('reason' in full, 'two blocks, two holders: no free block')
  t.equal(shimAddress(cidrOf('192.168.50.192/26')), '192.168.50.193')
  t.equal(keys.peerOf(keys.key('A')), 'A')
  t.equal(keys.peerOf('netleases/A/x/lan'), undefined)
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until(t: Test, what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) return void t.fail(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

t.test('hosts lease disjoint blocks; a deleted network leaves no lease or allocation', async (t) => {
  const hosts: { store: LocalStore; networks: NamedNetworks; stateDir: string }[] = []
  for (let i = 0; i < 3; i++) {
    const store = new LocalStore({
      signer: createSigner(await generateKeyPair('Ed25519')),
      verify: verifyRecordSignature,
      metrics: new Metrics(),
    })
    const stateDir = await mkdtemp(join(tmpdir(), 'plexus-nets-'))
    const networks = new NamedNetworks(
      {
        store,
        config: { name: `h${i}`, runDir: stateDir, stateDir },
        logger: pino({ level: 'silent' }),
        metrics: new Metrics(),
        shutdown: new AbortController().signal,
      },
      {
        ttlMs: 3000,
        settleMs: 200,
        retryMs: 100,
        renewMs: 500,
        driftMs: 100,
        confirmDelayMs: 200,
        contactMs: 500,
        underlay: async () => ({ address: `192.168.50.${11 + i}`, ifname: 'eth0', mtu: 1500 }),
      },
    )
    hosts.push({ store, networks, stateDir })
    t.teardown(async () => {
      await networks.stop()
      await rm(stateDir, { recursive: true, force: true })
    })
  }
  // gossip: every local write reaches the others
  for (const h of hosts)
    h.store.onLocalWrite((r) => {
      for (const o of hosts) if (o !== h) setTimeout(() => o.store.merge([r]), 10)
    })
  for (const h of hosts) await h.networks.start()

  const a = hosts[0]!
  t.same(await createNamedNetwork(a.store, { ...LAN, blockLen: 27 }), {
    network: { ...parseMacvlanNetwork(LAN), blockLen: 27 },
    changed: true,
  })
  t.same(
    (await createNamedNetwork(a.store, { ...LAN, blockLen: 27 })).changed,
    false,
    'same again: no change',
  )
  await t.rejects(createNamedNetwork(a.store, { ...LAN, range: '192.168.50.128/26' }), {
    code: 'PLX_IPAM_NETWORK_EXISTS',
  })
  await t.rejects(createNamedNetwork(a.store, { ...LAN, name: 'lan2' }), /overlaps network lan/)

  await until(t, 'every host holds a block', () =>
    hosts.every((h) => h.networks.get('lan')?.lease.status().state === 'acquired'),
  )
  const blocks = hosts.map((h) => h.networks.get('lan')!.lease.current()!.cidr)
  for (const b of blocks) t.ok(containsCidr(cidrOf('192.168.50.128/25'), b), `${formatCidr(b)} in the range`)
  for (let i = 0; i < blocks.length; i++)
    for (let j = i + 1; j < blocks.length; j++)
      t.notOk(overlaps(blocks[i]!, blocks[j]!), 'blocks are disjoint')
  // the API's view agrees from any host
  await until(
    t,
    'host c sees three blocks',
    () => namedNetworksReport(hosts[2]!.store)[0]?.blocks.length === 3,
  )

  // addresses come from each host's own block; 30 a host, none twice across hosts
  const seen = new Set<string>()
  for (const [i, h] of hosts.entries()) {
    const alloc = h.networks.get('lan')!.addresses
    for (let n = 0; n < 29; n++) {
      const r = await alloc.allocate({ containerId: `c${i}-${n}`, ifname: 'eth0' })
      t.notOk(seen.has(r.address), `${r.address} handed out once`)
      seen.add(r.address)
    }
    await t.rejects(alloc.allocate({ containerId: `c${i}-full`, ifname: 'eth0' }), {
      code: 'PLX_IPAM_EXHAUSTED',
    })
  }

  await removeNamedNetwork(hosts[1]!.store, 'lan')
  await t.rejects(removeNamedNetwork(a.store, 'nope'), { code: 'PLX_IPAM_NO_NETWORK' })
  await until(t, 'every host closed the network', () => hosts.every((h) => !h.networks.get('lan')))
  await until(t, 'no block lease left anywhere', () =>
    hosts.every((h) => h.store.list('netleases/').length === 0),
  )
  // a host's lease record goes before its allocation directory (close() in networks.ts): let each pass finish
  await Promise.all(hosts.map((h) => h.networks.sync()))
  for (const h of hosts) {
    await t.rejects(
      access(join(h.stateDir, 'ipam', 'networks', 'lan')),
      { code: 'ENOENT' },
      'allocations gone',
    )
    t.equal(h.store.get(networkKey('lan')), undefined)
  }
})

t.test("a macvlan network's MTU is optional and checked", async (t) => {
  t.equal(parseMacvlanNetwork(LAN).mtu, undefined, "absent: the parent interface's")
  t.equal(parseMacvlanNetwork({ ...LAN, mtu: 9000 }).mtu, 9000)
  t.match(problems({ ...LAN, mtu: 100 }), [/mtu must be an integer from 576 to 65535/])
})
