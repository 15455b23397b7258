// The wireguard backend's pure parts: keys, UAPI parsing and planning, the
// desired peers from (possibly hostile) leases, and the network config defaults.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { generateKeys, keysOf, loadOrCreateKeys } from '../../../src/datapath/backend/wireguard/keys.js'
import { type DeviceState, parseGet, planDevice } from '../../../src/datapath/backend/wireguard/uapi.js'
import { desiredState } from '../../../src/datapath/desired.js'
import type { WgIdentity } from '../../../src/datapath/model.js'
import { overlayMtu, parseNetworkConfig } from '../../../src/ipam/config.js'
import { validLeases } from '../../../src/ipam/leases.js'
import type { JsonValue, StoreRecord } from '../../../src/store/types.js'
import { H1_UNDERLAY } from '../../helpers/records.js'

// RFC 7748 section 6.1: Alice's X25519 private key and the public key it gives
const RFC_PRIVATE = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')
const RFC_PUBLIC = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex')

t.test('keys: the public key of a private key is X25519 (RFC 7748 vector), in wg format', async (t) => {
  const k = keysOf(RFC_PRIVATE.toString('base64'))
  t.equal(k.publicKey, RFC_PUBLIC.toString('base64'))
  t.throws(() => keysOf('not a key'), { code: 'PLX_WG_KEY_INVALID' })
  const g = generateKeys()
  t.equal(keysOf(g.privateKey).publicKey, g.publicKey, 'a generated pair is consistent')
  t.not(generateKeys().privateKey, g.privateKey)
})

t.test(
  'keys: made once in the state dir (0600), read back after a restart, a damaged file refused',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'plexus-wg-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const first = await loadOrCreateKeys(dir)
    t.ok(first.created, 'made on first use')
    const file = join(dir, 'wireguard.key')
    t.equal((await stat(file)).mode & 0o777, 0o600)
    t.equal((await readFile(file, 'utf8')).trim(), first.keys.privateKey)
    t.same(await loadOrCreateKeys(dir), { keys: first.keys, created: false }, 'the same pair after a restart')
    await writeFile(file, 'garbage\n')
    await t.rejects(loadOrCreateKeys(dir), { code: 'PLX_WG_KEY_INVALID' })
  },
)

const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex')
const A = generateKeys()
const B = generateKeys()
const C = generateKeys()

t.test('UAPI: a get answer parses; the plan adds, changes and removes peers one by one', async (t) => {
  const answer = [
    `private_key=${hex(A.privateKey)}`,
    'listen_port=51820',
    `public_key=${hex(B.publicKey)}`,
    'endpoint=192.0.2.12:51820',
    'last_handshake_time_sec=1700000000',
    'last_handshake_time_nsec=5',
    'rx_bytes=10',
    'tx_bytes=20',
    'allowed_ip=10.244.2.0/24',
    `public_key=${hex(C.publicKey)}`,
    'endpoint=192.0.2.13:51820',
    'allowed_ip=10.244.3.0/24',
    'protocol_version=1',
  ].join('\n')
  const have = parseGet(answer)
  t.same(have, {
    privateKey: A.privateKey,
    listenPort: 51820,
    peers: [
      {
        publicKey: B.publicKey,
        endpoint: '192.0.2.12:51820',
        allowedIps: ['10.244.2.0/24'],
        lastHandshake: 1_700_000_000,
        rxBytes: 10,
        txBytes: 20,
      },
      {
        publicKey: C.publicKey,
        endpoint: '192.0.2.13:51820',
        allowedIps: ['10.244.3.0/24'],
        lastHandshake: 0,
        rxBytes: 0,
        txBytes: 0,
      },
    ],
  })
  const same = planDevice(
    {
      privateKey: A.privateKey,
      listenPort: 51820,
      peers: have.peers.map(({ publicKey, endpoint, allowedIps }) => ({ publicKey, endpoint, allowedIps })),
    },
    have,
  )
  t.equal(same.request, undefined, 'nothing to send when the device holds the config')

  const D = generateKeys()
  const plan = planDevice(
    {
      privateKey: A.privateKey,
      listenPort: 51820,
      peers: [
        { publicKey: B.publicKey, endpoint: '192.0.2.22:51820', allowedIps: ['10.244.2.0/24'] },
        { publicKey: D.publicKey, endpoint: '192.0.2.14:51820', allowedIps: ['10.244.4.0/24'] },
      ],
    },
    have,
  )
  t.same([plan.added, plan.updated, plan.removed], [[D.publicKey], [B.publicKey], [C.publicKey]])
  t.equal(
    plan.request,
    [
      'set=1',
      `public_key=${hex(C.publicKey)}`,
      'remove=true',
      `public_key=${hex(B.publicKey)}`,
      'endpoint=192.0.2.22:51820',
      'replace_allowed_ips=true',
      'allowed_ip=10.244.2.0/24',
      `public_key=${hex(D.publicKey)}`,
      'endpoint=192.0.2.14:51820',
      'replace_allowed_ips=true',
      'allowed_ip=10.244.4.0/24',
      '',
      '',
    ].join('\n'),
  )
  t.notMatch(plan.request, /replace_peers/, 'sessions of unchanged peers are kept')

  const fresh: DeviceState = { listenPort: 40000, peers: [] }
  const start = planDevice({ privateKey: A.privateKey, listenPort: 51820, peers: [] }, fresh)
  t.equal(start.request, `set=1\nprivate_key=${hex(A.privateKey)}\nlisten_port=51820\n\n`)
  t.same([start.keyChanged, start.portChanged], [true, true])
})

const NOW = 1_800_000_000_000
const network = parseNetworkConfig({ Backend: { Type: 'wireguard' } })

function lease(peer: string, n: number, backend: Record<string, JsonValue>): StoreRecord {
  return {
    key: `leases/${peer}`,
    value: {
      subnet: `10.244.${n}.0/24`,
      publicIp: `192.0.2.${10 + n}`,
      hostname: `h${n}`,
      backend: { type: 'wireguard', ...backend },
      claimedAt: NOW - 1000,
    },
    owner: peer,
    version: { wall: NOW - 1000, logical: 0 },
    ttlMs: 60_000,
    tombstone: false,
    sig: '',
  }
}

t.test('config: wireguard defaults to port 51820 and MTU = underlay - 60', async (t) => {
  t.equal(network.Backend.Port, 51820)
  t.equal(overlayMtu(network, 1500), 1440)
  t.throws(() => parseNetworkConfig({ Backend: { Type: 'wireguard', DirectRouting: true } }), {
    code: 'PLX_IPAM_CONFIG_INVALID',
  })
})

/** the desired state of host p1 (h1, key A) among the leases, with its keys */
function desiredOfP1(records: StoreRecord[], keys: WgIdentity) {
  const leases = validLeases(records, network, NOW)
  const self = leases.valid.find((l) => l.peerId === 'p1')
  if (!self) throw new Error('no self lease')
  return desiredState({
    network,
    peerId: 'p1',
    self,
    leases,
    ...keys,
    underlay: H1_UNDERLAY,
  })
}

t.test('desired: one peer per remote, its subnet as allowed IPs; forged keys refused', async (t) => {
  const E = generateKeys()
  const d = desiredOfP1(
    [
      lease('p1', 1, { publicKey: A.publicKey, endpoint: '192.0.2.11:51820' }),
      lease('p2', 2, { publicKey: B.publicKey, endpoint: '192.0.2.12:51820' }),
      lease('p3', 3, { publicKey: C.publicKey, endpoint: '192.0.2.13:51820' }),
      // no key yet (a host still starting): no peer, refused with the reason
      lease('p4', 4, {}),
      // another host's key: WireGuard has one peer per key, so the second claimant is refused
      lease('p5', 5, { publicKey: B.publicKey, endpoint: '192.0.2.15:51820' }),
      // this host's own key
      lease('p6', 6, { publicKey: A.publicKey, endpoint: '192.0.2.16:51820' }),
      lease('p7', 7, { publicKey: E.publicKey, endpoint: '192.0.2.17:51820' }),
    ],
    { wgPublicKey: A.publicKey },
  )
  t.same(d.links[1], { name: 'plexus-wg', kind: 'wireguard', mtu: 1440, addresses: ['10.244.1.0/32'] })
  t.same(d.wireguard, {
    ifname: 'plexus-wg',
    listenPort: 51820,
    peers: [
      { publicKey: B.publicKey, endpoint: '192.0.2.12:51820', allowedIps: ['10.244.2.0/24'] },
      { publicKey: C.publicKey, endpoint: '192.0.2.13:51820', allowedIps: ['10.244.3.0/24'] },
      { publicKey: E.publicKey, endpoint: '192.0.2.17:51820', allowedIps: ['10.244.7.0/24'] },
    ],
  })
  t.same(
    d.routes.map((r) => `${r.dst} ${r.dev}`),
    ['10.244.2.0/24 plexus-wg', '10.244.3.0/24 plexus-wg', '10.244.7.0/24 plexus-wg'],
  )
  t.same(
    d.remotes.filter((r) => r.mode === 'refused').map((r) => [r.host, r.reason]),
    [
      ['h4', 'h4 publishes no WireGuard key and endpoint (its backend is wireguard)'],
      ['h5', 'h5 publishes the WireGuard key of h2'],
      ['h6', "h6 publishes this host's own public key"],
    ],
  )
  t.same(d.neighbours, [])
  t.same(d.fdb, [])
  const input = d.firewall.sections.find((s) => s.name === 'cluster')?.rules.find((r) => r.id === 'wg-port')
  t.same(input?.match, { proto: 'udp', dport: 51820 }, 'the WireGuard port is accepted')
})

t.test(
  'desired: a host rotating its key gets a second peer for the next key, without allowed IPs',
  async (t) => {
    const [N2, N3, N1] = [generateKeys(), generateKeys(), generateKeys()]
    const d = desiredOfP1(
      [
        lease('p1', 1, { publicKey: A.publicKey, endpoint: '192.0.2.11:51820' }),
        lease('p2', 2, { publicKey: B.publicKey, nextPublicKey: N2.publicKey, endpoint: '192.0.2.12:51820' }),
        // its next key is another host's key: refused like a second claimant of that key
        lease('p3', 3, { publicKey: C.publicKey, nextPublicKey: B.publicKey, endpoint: '192.0.2.13:51820' }),
        // its next key is this host's next key
        lease('p4', 4, {
          publicKey: N3.publicKey,
          nextPublicKey: N1.publicKey,
          endpoint: '192.0.2.14:51820',
        }),
        // its next key is this host's key
        lease('p5', 5, { publicKey: C.publicKey, nextPublicKey: A.publicKey, endpoint: '192.0.2.15:51820' }),
      ],
      { wgPublicKey: A.publicKey, wgNextPublicKey: N1.publicKey },
    )
    t.same(d.wireguard?.peers, [
      { publicKey: B.publicKey, endpoint: '192.0.2.12:51820', allowedIps: ['10.244.2.0/24'] },
      { publicKey: N2.publicKey, endpoint: '192.0.2.12:51820', allowedIps: [] },
    ])
    t.same(
      d.remotes.map((r) => [r.host, r.mode, r.reason]),
      [
        ['h2', 'wireguard', undefined],
        ['h3', 'refused', 'h3 publishes the WireGuard key of h2'],
        ['h4', 'refused', "h4 publishes this host's own public key"],
        ['h5', 'refused', "h5 publishes this host's own public key"],
      ],
    )
    // phase 2 on p2: its lease names the next key alone; the plan moves the subnet to it and drops the old peer
    const have: DeviceState = {
      privateKey: A.privateKey,
      listenPort: 51820,
      peers: (d.wireguard?.peers ?? []).map((p) => ({ ...p, lastHandshake: 0, rxBytes: 0, txBytes: 0 })),
    }
    const plan = planDevice(
      {
        privateKey: A.privateKey,
        listenPort: 51820,
        peers: [{ publicKey: N2.publicKey, endpoint: '192.0.2.12:51820', allowedIps: ['10.244.2.0/24'] }],
      },
      have,
    )
    t.same([plan.added, plan.updated, plan.removed], [[], [N2.publicKey], [B.publicKey]])
  },
)
