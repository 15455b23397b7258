// plexctl doctor's reader and checks against a real kernel: a namespace made
// here with an underlay (a veth: this kernel has no dummy links), the bridge and the VXLAN device, then broken one way
// at a time (forwarding off, rp_filter strict, a foreign DROP policy in
// iptables and in a foreign nftables table).
import t from 'tap'
import { type DoctorFacts, runChecks } from '../../../src/diag/doctor/checks.js'
import { gatherDoctorFacts } from '../../../src/diag/doctor/facts.js'
import { nsExec, tempNetns } from '../datapath/tempns.js'

t.test('doctor in a namespace: healthy, then each cause of trouble named', { timeout: 30_000 }, async (t) => {
  const ns = tempNetns(t, 'doc')
  const ip = (...a: string[]) => nsExec(ns.name, 'ip', a)
  ip('link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0p')
  ip('addr', 'add', '192.0.2.10/24', 'dev', 'ul0')
  ip('link', 'set', 'ul0', 'up')
  ip('link', 'add', 'plexus0', 'mtu', '1450', 'type', 'bridge')
  ip(
    'link',
    'add',
    'plexus.1',
    'mtu',
    '1450',
    'type',
    'vxlan',
    'id',
    '1',
    'dstport',
    '8472',
    'dev',
    'ul0',
    'nolearning',
  )
  // slash-separated keys: a device name holds a dot (plexus.1)
  const sysctl = (kv: string) => nsExec(ns.name, 'sysctl', ['-qw', kv])
  sysctl('net/ipv4/ip_forward=1')
  for (const d of ['all', 'default', 'plexus0', 'plexus.1', 'ul0']) sysctl(`net/ipv4/conf/${d}/rp_filter=0`)

  const overlay: NonNullable<DoctorFacts['overlay']> = {
    backend: 'vxlan',
    port: 8472,
    bridge: 'plexus0',
    device: 'plexus.1',
    underlay: 'ul0',
    overhead: 50,
    mtu: 1450,
    network: '10.244.0.0/16',
  }
  const check = async (name: string) => {
    const facts = await gatherDoctorFacts({
      netns: ns.path,
      overlay,
      lease: { state: 'acquired', subnet: '10.244.1.0/24' },
    })
    return runChecks(facts).filter((f) => f.check === name)
  }
  const statuses = async () => {
    const facts = await gatherDoctorFacts({ netns: ns.path, overlay, lease: { state: 'acquired' } })
    return Object.fromEntries(runChecks(facts).map((f) => [f.check, f.status]))
  }

  const healthy = await statuses()
  t.same(
    healthy,
    {
      lease: 'ok',
      'ip-forwarding': 'ok',
      'rp-filter': 'ok',
      'iptables-forward': 'ok',
      'iptables-overlay-port': 'ok',
      'nft-foreign-chains': 'ok',
      'underlay-mtu': 'ok',
    },
    'a fresh namespace with forwarding on is healthy',
  )

  sysctl('net/ipv4/ip_forward=0')
  const [fwd] = await check('ip-forwarding')
  t.equal(fwd?.status, 'fail', 'forwarding off')
  t.match(fwd?.evidence, /ip_forward = 0/)
  sysctl('net/ipv4/ip_forward=1')

  sysctl('net/ipv4/conf/plexus0/rp_filter=1')
  const [rp] = await check('rp-filter')
  t.equal(rp?.status, 'warn', 'strict rp_filter on the bridge')
  t.match(rp?.evidence, /on plexus0 /)
  sysctl('net/ipv4/conf/plexus0/rp_filter=2')
  t.equal((await check('rp-filter'))[0]?.status, 'ok', 'loose is fine')

  nsExec(ns.name, 'iptables', ['-P', 'FORWARD', 'DROP'])
  const [xt] = await check('iptables-forward')
  t.equal(xt?.status, 'fail', 'iptables FORWARD policy DROP without our jump')
  t.match(xt?.evidence, /FORWARD policy DROP/)
  nsExec(ns.name, 'iptables', ['-N', 'PLEXUS-FORWARD'])
  nsExec(ns.name, 'iptables', ['-I', 'FORWARD', '-j', 'PLEXUS-FORWARD'])
  t.equal(
    (await check('iptables-forward'))[0]?.status,
    'ok',
    'with our jump first the policy does not matter',
  )
  nsExec(ns.name, 'iptables', ['-I', 'FORWARD', '-s', '10.244.0.0/16', '-j', 'DROP'])
  const [ahead] = await check('iptables-forward')
  t.equal(ahead?.status, 'fail', 'a foreign DROP ahead of our jump')
  t.match(ahead?.evidence, /-A FORWARD -s 10\.244\.0\.0\/16 -j DROP/)

  nsExec(ns.name, 'nft', [
    'add table inet hostfw; add chain inet hostfw guard { type filter hook forward priority 0; policy drop; }',
  ])
  const [nft] = await check('nft-foreign-chains')
  t.equal(nft?.status, 'fail', 'a foreign nftables chain with policy drop')
  t.match(nft?.evidence, /inet hostfw guard \(hook forward/)

  ip('link', 'set', 'ul0', 'mtu', '1400')
  const [mtu] = await check('underlay-mtu')
  t.equal(mtu?.status, 'fail', 'underlay MTU lowered')
  t.match(mtu?.evidence, /ul0 MTU 1400 < overlay MTU 1450 \+ 50/)
})
