import t from 'tap'
import { type DoctorFacts, overall, runChecks } from '../../../src/diag/doctor/checks.js'

const NOW = Date.parse('2026-03-01T12:00:00Z')
const MIN = 60_000

/** a healthy vxlan host: every check ok */
function healthy(): DoctorFacts {
  return {
    ipForward: 1,
    rpFilter: { all: 0, plexus0: 0, 'plexus.1': 0, eth0: 2 },
    mtu: { lo: 65536, eth0: 1500, plexus0: 1450, 'plexus.1': 1450 },
    overlay: {
      backend: 'vxlan',
      port: 8472,
      bridge: 'plexus0',
      device: 'plexus.1',
      underlay: 'eth0',
      overhead: 50,
      mtu: 1450,
      network: '10.244.0.0/16',
    },
    iptablesSave: [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':PLEXUS-FORWARD - [0:0]',
      '-A INPUT -j PLEXUS-INPUT',
      '-A FORWARD -j PLEXUS-FORWARD',
      '-A FORWARD -j DROP',
      '-A PLEXUS-FORWARD -s 10.244.0.0/16 -j ACCEPT',
      'COMMIT',
    ].join('\n'),
    nftRuleset: { nftables: [] },
    lease: { state: 'acquired', subnet: '10.244.1.0/24' },
    dns: { address: '10.244.1.1', answered: true, detail: 'NOERROR in 0.4 ms' },
    clock: { toleranceMs: 1000, peers: [{ host: 'h2', offsetMs: 3, rttMs: 2 }] },
    handshakes: { now: NOW, refused: [] },
  }
}

function statusOf(f: DoctorFacts, check: string) {
  return runChecks(f).find((x) => x.check === check)
}

t.test('a healthy host: every check ok (FORWARD policy DROP is fine behind our jump)', async (t) => {
  const findings = runChecks(healthy())
  t.same(
    findings.map((x) => [x.check, x.status]),
    [
      ['lease', 'ok'],
      ['ip-forwarding', 'ok'],
      ['rp-filter', 'ok'],
      ['iptables-forward', 'ok'],
      ['iptables-overlay-port', 'ok'],
      ['nft-foreign-chains', 'ok'],
      ['underlay-mtu', 'ok'],
      ['dns', 'ok'],
      ['clock-offset', 'ok'],
      ['cluster-key', 'ok'],
    ],
  )
  t.equal(overall(findings), 'ok')
})

t.test(
  'clock: an offset beyond one heartbeat period, net of the round trip, warns naming the host',
  async (t) => {
    const f = healthy()
    const peers = [
      { host: 'h2', offsetMs: -40, rttMs: 4 },
      { host: 'h3', offsetMs: 1500, rttMs: 10 },
      // 1,150 ms off, but the answer took 400 ms: within 1,000 ± 200
      { host: 'h4', offsetMs: 1150, rttMs: 400 },
    ]
    const c = statusOf({ ...f, clock: { toleranceMs: 1000, peers } }, 'clock-offset')
    t.equal(c?.status, 'warn')
    t.match(c?.evidence, /h3 \+1500 ms \(±5\)/)
    t.notMatch(c?.evidence, /h2|h4/, 'only the host beyond the tolerance')
    t.match(c?.fix, /NTP/)
    t.equal(
      statusOf({ ...f, clock: { toleranceMs: 1000, peers: [] } }, 'clock-offset')?.status,
      'ok',
      'alone: ok',
    )
    const { clock: _, ...unasked } = f
    t.equal(statusOf(unasked, 'clock-offset'), undefined, 'not asked: no finding')
  },
)

t.test('forwarding off fails with the sysctl as evidence and fix', async (t) => {
  const f = statusOf({ ...healthy(), ipForward: 0 }, 'ip-forwarding')
  t.equal(f?.status, 'fail')
  t.match(f?.evidence, /ip_forward = 0/)
  t.match(f?.fix, /sysctl -w net.ipv4.ip_forward=1/)
})

t.test('rp_filter: strict on a device or via all warns; loose does not', async (t) => {
  const dev = statusOf(
    { ...healthy(), rpFilter: { all: 0, plexus0: 1, 'plexus.1': 0, eth0: 0 } },
    'rp-filter',
  )
  t.equal(dev?.status, 'warn')
  t.match(dev?.evidence, /plexus0/)
  t.notMatch(dev?.evidence, /on plexus\.1/)
  const all = statusOf(
    { ...healthy(), rpFilter: { all: 1, plexus0: 0, 'plexus.1': 0, eth0: 2 } },
    'rp-filter',
  )
  t.equal(all?.status, 'warn', 'max(all, dev): all=1 makes plexus0 strict')
  t.match(all?.evidence, /plexus0, plexus\.1/)
  t.notMatch(all?.evidence, /plexus\.1, eth0/, 'eth0 at 2 (loose) stays loose')
  t.equal(statusOf({ ...healthy(), rpFilter: { all: 2, plexus0: 2 } }, 'rp-filter')?.status, 'ok')
})

t.test('iptables: a foreign DROP ahead of our jump fails; one after it is fine', async (t) => {
  const base = healthy()
  const ahead = base.iptablesSave?.replace(
    '-A FORWARD -j PLEXUS-FORWARD',
    '-A FORWARD -s 10.244.0.0/16 -j DROP\n-A FORWARD -j PLEXUS-FORWARD',
  )
  const f = statusOf({ ...base, iptablesSave: ahead as string }, 'iptables-forward')
  t.equal(f?.status, 'fail')
  t.match(f?.evidence, /-A FORWARD -s 10\.244\.0\.0\/16 -j DROP/)
  const other = base.iptablesSave?.replace(
    '-A FORWARD -j PLEXUS-FORWARD',
    '-A FORWARD -s 192.168.0.0/16 -j DROP\n-A FORWARD -j PLEXUS-FORWARD',
  )
  t.equal(
    statusOf({ ...base, iptablesSave: other as string }, 'iptables-forward')?.status,
    'ok',
    'other sources',
  )
  const noJump = base.iptablesSave?.replace('-A FORWARD -j PLEXUS-FORWARD\n-A FORWARD -j DROP\n', '')
  const nj = statusOf({ ...base, iptablesSave: noJump as string }, 'iptables-forward')
  t.equal(nj?.status, 'fail', 'policy DROP + jump missing: the whole forward path is dropped')
  t.match(nj?.evidence, /policy DROP and no jump/)
  const noJumpDrop = base.iptablesSave?.replace('-A FORWARD -j PLEXUS-FORWARD\n', '')
  const njd = statusOf({ ...base, iptablesSave: noJumpDrop as string }, 'iptables-forward')
  t.match(njd?.evidence, /-A FORWARD -j DROP/, 'without the jump every dropping rule of FORWARD is ahead')
})

t.test('iptables: INPUT dropping the VXLAN port ahead of PLEXUS-INPUT fails', async (t) => {
  const base = healthy()
  const save = base.iptablesSave?.replace(
    '-A INPUT -j PLEXUS-INPUT',
    '-A INPUT -p udp -m udp --dport 8472 -j DROP\n-A INPUT -j PLEXUS-INPUT',
  )
  const f = statusOf({ ...base, iptablesSave: save as string }, 'iptables-overlay-port')
  t.equal(f?.status, 'fail')
  t.match(f?.evidence, /UDP 8472/)
  const tcp = base.iptablesSave?.replace(
    '-A INPUT -j PLEXUS-INPUT',
    '-A INPUT -p tcp -m tcp --dport 8472 -j DROP\n-A INPUT -j PLEXUS-INPUT',
  )
  t.equal(
    statusOf({ ...base, iptablesSave: tcp as string }, 'iptables-overlay-port')?.status,
    'ok',
    'TCP 8472 is not ours',
  )
})

t.test(
  'nftables: a foreign forward chain with policy drop fails; iptables-nft tables are not reported twice',
  async (t) => {
    const ruleset = {
      nftables: [
        { table: { family: 'inet', name: 'fw' } },
        {
          chain: {
            family: 'inet',
            table: 'fw',
            name: 'fwd',
            type: 'filter',
            hook: 'forward',
            prio: 0,
            policy: 'drop',
          },
        },
        {
          chain: {
            family: 'inet',
            table: 'plexus',
            name: 'forward',
            type: 'filter',
            hook: 'forward',
            prio: 0,
            policy: 'accept',
          },
        },
        {
          chain: {
            family: 'ip',
            table: 'filter',
            name: 'FORWARD',
            type: 'filter',
            hook: 'forward',
            prio: 0,
            policy: 'drop',
          },
        },
      ],
    }
    const f = statusOf({ ...healthy(), nftRuleset: ruleset }, 'nft-foreign-chains')
    t.equal(f?.status, 'fail')
    t.match(f?.evidence, /inet fw fwd \(hook forward/)
    t.notMatch(f?.evidence, /ip filter FORWARD/)
    t.notMatch(f?.evidence, /inet plexus/)
    const onlyOurs = { nftables: ruleset.nftables.slice(2) }
    t.equal(statusOf({ ...healthy(), nftRuleset: onlyOurs }, 'nft-foreign-chains')?.status, 'ok')
  },
)

t.test('MTU: an underlay lowered below overlay + overhead fails with both numbers', async (t) => {
  const f = statusOf({ ...healthy(), mtu: { eth0: 1400, plexus0: 1450, 'plexus.1': 1450 } }, 'underlay-mtu')
  t.equal(f?.status, 'fail')
  t.match(f?.evidence, /MTU 1400 < overlay MTU 1450 \+ 50/)
  t.match(f?.fix, /1350/)
  const gone = statusOf({ ...healthy(), mtu: {} }, 'underlay-mtu')
  t.equal(gone?.status, 'fail')
})

t.test('lease not held and DNS not answering fail; no lease means no overlay checks', async (t) => {
  const f: DoctorFacts = { ...healthy(), lease: { state: 'isolated', reason: 'no majority' } }
  delete f.overlay
  delete f.dns
  const findings = runChecks(f)
  t.same(
    findings.map((x) => [x.check, x.status]),
    [
      ['lease', 'fail'],
      ['ip-forwarding', 'ok'],
      ['rp-filter', 'ok'],
      ['clock-offset', 'ok'],
      ['cluster-key', 'ok'],
    ],
  )
  t.match(findings[0]?.fix, /majority/)
  const dns = statusOf(
    { ...healthy(), dns: { address: '10.244.1.1', answered: false, detail: 'no reply within 1000 ms' } },
    'dns',
  )
  t.equal(dns?.status, 'fail')
  t.equal(
    overall(runChecks({ ...healthy(), rpFilter: { all: 1 } })),
    'ok',
    'no overlay device in rpFilter: nothing strict on our paths',
  )
})

t.test(
  'cluster key: a mismatch in the last 10 min warns naming the address; older or other failures do not',
  async (t) => {
    const f = healthy()
    const none = statusOf(f, 'cluster-key')
    t.equal(none?.status, 'ok', 'none refused: ok')
    t.match(none?.evidence, /no connection refused for another cluster key/)

    const mismatch = (agoMs: number, remote: string, direction: 'inbound' | 'outbound' = 'inbound') => ({
      at: NOW - agoMs,
      remote,
      direction,
      kind: 'key-mismatch' as const,
    })
    const two = statusOf(
      { ...f, handshakes: { now: NOW, refused: [mismatch(2 * MIN, '/ip4/10.0.0.5/tcp/41234')] } },
      'cluster-key',
    )
    t.equal(two?.status, 'warn', 'a mismatch 2 min ago warns')
    t.match(
      two?.evidence,
      /1 connection refused .* another cluster key, from 10\.0\.0\.5 \(1\); the last 2 min ago \(inbound\)/,
    )
    t.notMatch(two?.evidence, /41234/, "the dialer's ephemeral port is not its address")
    t.match(
      two?.fix,
      /a host at 10\.0\.0\.5 dials this one with another cluster key: give it this cluster's key \(cluster\.keyFile\)/,
    )
    t.equal(
      overall(
        runChecks({
          ...f,
          handshakes: { now: NOW, refused: [mismatch(2 * MIN, '/ip4/10.0.0.5/tcp/41234')] },
        }),
      ),
      'warn',
    )

    t.equal(
      statusOf(
        { ...f, handshakes: { now: NOW, refused: [mismatch(20 * MIN, '/ip4/10.0.0.5/tcp/41234')] } },
        'cluster-key',
      )?.status,
      'ok',
      'one 20 min ago: ok',
    )

    const timeout = statusOf(
      {
        ...f,
        handshakes: {
          now: NOW,
          refused: [
            { at: NOW - MIN, remote: '/ip4/10.0.0.9/tcp/5555', direction: 'inbound', kind: 'handshake' },
          ],
        },
      },
      'cluster-key',
    )
    t.equal(timeout?.status, 'ok', 'a handshake timeout only: ok')
    t.match(timeout?.evidence, /1 other failed handshake/)

    const many = statusOf(
      {
        ...f,
        handshakes: {
          now: NOW,
          refused: [
            mismatch(9 * MIN, '/ip4/10.0.0.1/tcp/1000'),
            mismatch(8 * MIN, '/ip4/10.0.0.2/tcp/1001'),
            mismatch(7 * MIN, '/ip4/10.0.0.2/tcp/1002'),
            mismatch(6 * MIN, '/ip4/10.0.0.3/tcp/1003'),
            mismatch(5 * MIN, '/ip4/10.0.0.4/tcp/7000', 'outbound'),
          ],
        },
      },
      'cluster-key',
    )
    t.match(many?.evidence, /^5 connections refused/)
    t.match(
      many?.evidence,
      /from \/ip4\/10\.0\.0\.4\/tcp\/7000 \(1\), 10\.0\.0\.3 \(1\), 10\.0\.0\.2 \(2\) and 1 more; the last 5 min ago \(outbound\)/,
      'at most 3 addresses, latest first',
    )
    t.match(
      many?.fix,
      /this host dials \/ip4\/10\.0\.0\.4\/tcp\/7000, which holds another cluster key/,
      'an outbound one: this host dials it',
    )

    const { handshakes: _, ...standalone } = f
    t.equal(statusOf(standalone, 'cluster-key'), undefined, 'standalone (no cluster key): no finding')
  },
)
