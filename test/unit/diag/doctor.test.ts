import t from 'tap'
import { type DoctorFacts, overall, runChecks } from '../../../src/diag/doctor/checks.js'

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
