// Plexus as the first plugin of a chain, followed by the reference `tuning`
// and `bandwidth` plugins (Debian's containernetworking-plugins), driven the
// way libcni drives a conflist: each plugin gets the previous result.
import { existsSync } from 'node:fs'
import t from 'tap'
import { run, upCluster } from '../../helpers/fixture.js'
import {
  allocations,
  containerNs,
  hostNs,
  hostVeths,
  netconf,
  plugin,
  refPlugin,
  waitReady,
} from './plugin.js'

// fixture work that outlasts tap's 300 s default on a loaded 2-core machine (ports.test did in a helper's run)
t.setTimeout(900_000)

// Installed by `make test` (the Makefile's APT_TEST), never from inside a test.
if (!existsSync('/usr/lib/cni/bandwidth'))
  throw new Error('/usr/lib/cni/bandwidth is missing: run `make deps-test` (containernetworking-plugins)')

const c = upCluster(t, { hosts: 1, prefix: 'cc' })
const H = 'h1'
await waitReady(c, H)

// containernetworking-plugins 1.1 speaks up to 1.0.0, so the chain does too.
const VERSION = '1.0.0'
const chain = [
  { type: 'plexus', socket: netconf(c, H).socket },
  { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' } },
  {
    type: 'bandwidth',
    ingressRate: 8_000_000,
    ingressBurst: 80_000,
    egressRate: 8_000_000,
    egressBurst: 80_000,
  },
]

type Conf = Record<string, unknown>
const confOf = (p: Conf, prevResult?: unknown): Conf => ({
  cniVersion: VERSION,
  name: 'plexus-chain',
  ...p,
  ...(prevResult ? { prevResult } : {}),
})
const invoke = (p: Conf, call: Parameters<typeof plugin>[2], prev?: unknown) =>
  p.type === 'plexus'
    ? plugin(c, H, call, confOf(p, prev))
    : refPlugin(c, H, p.type as string, call, confOf(p, prev))

t.test('ADD, CHECK and DEL through plexus → tuning → bandwidth', async (t) => {
  const nsName = `${c.name}-ch`
  const netns = containerNs(t, nsName)
  const call = { containerId: `chain-${process.pid}`, netns }
  let prev: unknown
  for (const p of chain) {
    const r = invoke(p, { ...call, command: 'ADD' }, prev)
    t.equal(r.status, 0, `${p.type} ADD: ${r.raw}${r.stderr}`)
    prev = r.out
  }
  const result = prev as { interfaces: { name: string; sandbox?: string }[]; ips: { address: string }[] }
  t.equal(result.ips.length, 1, 'the chain result still carries the Plexus address')
  const hostVeth = result.interfaces.find((i) => !i.sandbox)?.name as string
  t.match(hostVeth, /^plx/)
  t.equal(
    run('ip', ['netns', 'exec', nsName, 'sysctl', '-n', 'net.ipv4.conf.eth0.arp_notify']).stdout.trim(),
    '1',
    'tuning set the sysctl in the container',
  )
  t.match(
    run('tc', ['-n', hostNs(c, H), 'qdisc', 'show', 'dev', hostVeth]).stdout,
    /tbf/,
    'bandwidth shaped the host veth',
  )

  for (const p of chain) {
    const r = invoke(p, { ...call, command: 'CHECK' }, prev)
    t.equal(r.status, 0, `${p.type} CHECK: ${r.raw}${r.stderr}`)
  }
  for (const p of [...chain].reverse()) {
    const r = invoke(p, { ...call, command: 'DEL' }, prev)
    t.equal(r.status, 0, `${p.type} DEL: ${r.raw}${r.stderr}`)
  }
  t.same(hostVeths(c, H), [], 'no veth left')
  t.same(allocations(c, H), [], 'no address left')
  t.notMatch(run('ip', ['-n', hostNs(c, H), '-o', 'link']).stdout, /bwp/, 'no ifb device left')
})
