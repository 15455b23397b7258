// Layer-2 anti-spoofing on container veths (issue 18), for both firewall
// backends: a container ("thief") on the same bridge as another ("victim")
// takes the victim's address, then its MAC as well. Whatever it does, its
// spoofed traffic gets no replies and the victim keeps every packet; forged
// sources (outside the cluster network, or unused inside its own subnet) are
// not delivered; nor is an IPv6 neighbour advertisement naming the victim's
// address; the kernel's drop counts reach `datapath.spoof.dropped`.
// Genuine packets on the same paths arrive, so a broken path cannot pass.
import { spawn } from 'node:child_process'
import t from 'tap'
import { linkLocalOf, type SpoofEndpoint } from '../../../src/datapath/firewall/spoof.js'
import { nsExec, tempNetns } from './tempns.js'
import { attach, type Container, nthAddress, pingOk, sleep, topology, waitFor } from './topology.js'
import { RECEIVE_NA, receive, SEND, SEND_NA } from './udp-probe.js'

// fixture work that outlasts tap's 300 s default on a loaded 2-core machine (ports.test did in a helper's run)
t.setTimeout(900_000)

const PINGS = 40

/** `ping -c PINGS` at 20/s from ns (async, so two run at once): packets sent and replies received */
function pings(ns: string, dst: string): Promise<{ sent: number; received: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', [
      'netns',
      'exec',
      ns,
      'ping',
      '-n',
      '-c',
      String(PINGS),
      '-i',
      '0.05',
      '-W',
      '1',
      dst,
    ])
    let out = ''
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    p.on('close', () => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
      resolve({
        sent: Number(m?.[1] ?? 0),
        received: Number(m?.[2] ?? 0),
        out: out.split('\n').slice(-3).join(' '),
      })
    })
  })
}

/** printf '%s\n' of lines (none holds a single quote) into cmd, in ns */
function pipe(ns: string, lines: string[], cmd: string): void {
  nsExec(ns, 'sh', ['-c', `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')} | ${cmd}`])
}

/**
 * The bridge hook's chains in ns as the iptables backend writes them: the ports PLEXUS-BRIDGE
 * jumps to, and flatten(): every port chain's rules moved into PLEXUS-BRIDGE (its rules count)
 */
function ebtablesLayout(ns: string) {
  const saved = () => nsExec(ns, 'ebtables-nft-save', ['-t', 'nat']).split('\n')
  return {
    jumps: () =>
      saved()
        .flatMap((l) => /^-A PLEXUS-BRIDGE -i (\S+) -j PLEXUS-P-\1$/.exec(l)?.[1] ?? [])
        .sort(),
    flatten: () => {
      const lines = saved()
      const chains = lines.flatMap((l) => /^:(PLEXUS-P-\S+) /.exec(l)?.[1] ?? [])
      const rules = lines
        .filter((l) => l.startsWith('-A PLEXUS-P-'))
        .map((l) => l.replace(/^-A \S+ /, '-A PLEXUS-BRIDGE '))
      pipe(
        ns,
        ['*nat', '-F PLEXUS-BRIDGE', ...chains.flatMap((c) => [`-F ${c}`, `-X ${c}`]), ...rules, 'COMMIT'],
        'ebtables-nft-restore --noflush',
      )
      return rules.length
    },
  }
}

/** the same for the nftables backend's table `bridge plexus` */
function nftLayout(ns: string) {
  const chains = () => {
    const out = new Map<string, string[]>()
    let at: string[] = []
    for (const line of nsExec(ns, 'nft', ['list', 'table', 'bridge', 'plexus'])
      .split('\n')
      .map((l) => l.trim())) {
      const chain = /^chain (\S+) \{$/.exec(line)?.[1]
      if (chain) {
        at = []
        out.set(chain, at)
      } else if (line && line !== '}' && !line.startsWith('type ') && !line.startsWith('table '))
        at.push(line)
    }
    return out
  }
  return {
    jumps: () =>
      (chains().get('prerouting') ?? [])
        .flatMap((l) => /^iifname "(\S+)" jump port-\1 /.exec(l)?.[1] ?? [])
        .sort(),
    flatten: () => {
      const rules = [...chains()].filter(([name]) => name.startsWith('port-')).flatMap(([, r]) => r)
      const table = [
        'delete table bridge plexus',
        'table bridge plexus {',
        'chain prerouting {',
        'type filter hook prerouting priority filter; policy accept;',
        ...rules,
        '}',
        '}',
      ]
      pipe(ns, table, 'nft -f -')
      return rules.length
    },
  }
}

for (const firewall of ['iptables', 'nftables'] as const) {
  t.test(
    `a container cannot take a neighbour's address or MAC (${firewall})`,
    { timeout: 240_000 },
    async (t) => {
      const topo = await topology(t, {
        hosts: 2,
        network: { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } },
        firewall,
      })
      const [h1, h2] = topo.hosts as [(typeof topo.hosts)[0], (typeof topo.hosts)[0]]
      const victim = h1.ep
      const peer = h2.ep
      const thief: Container = { ...tempNetns(t, 'x1'), ip: nthAddress(h1.subnet, 3) }
      await attach(h1, thief, 'veth-x1')
      await h1.reconciler.reconcile()
      t.not(
        await waitFor(() => pingOk(peer.name, victim.ip) && pingOk(thief.name, peer.ip), 30_000),
        -1,
        'paths up',
      )
      // a frame passes one jump per port and its own port's rules only; the flat chain an earlier
      // release wrote is rewritten so by the next pass
      const layout = firewall === 'iptables' ? ebtablesLayout(h1.ns.name) : nftLayout(h1.ns.name)
      const ports = [...h1.endpoints.keys()].sort()
      t.same(layout.jumps(), ports, 'the bridge chain: a jump to a chain per port')
      const flat = layout.flatten()
      t.same(layout.jumps(), [], `a flat chain as an earlier release wrote it (${flat} rules)`)
      await h1.reconciler.reconcile()
      t.same(layout.jumps(), ports, 'rewritten as port chains by the next pass')

      // forged UDP sources, with genuine datagrams before and after on the same paths
      const atVictim = receive(victim.name, 120_000)
      const atPeer = receive(peer.name, 120_000)
      t.teardown(() => {
        atVictim.stop()
        atPeer.stop()
      })
      await waitFor(() => atVictim.lines().includes('ready') && atPeer.lines().includes('ready'), 30_000)
      const send = (src: string, dst: string, payload: string) =>
        nsExec(thief.name, 'python3', ['-c', SEND, src, dst, payload])
      const genuine = async (payload: string) => {
        const by = Date.now() + 10_000
        while (!(atVictim.lines().includes(payload) && atPeer.lines().includes(payload)) && Date.now() < by) {
          send('-', victim.ip, payload)
          send('-', peer.ip, payload)
          await sleep(200)
        }
      }
      await genuine('genuine')
      send('203.0.113.5', victim.ip, 'outside-to-neighbour')
      send('203.0.113.5', peer.ip, 'outside-to-other-host')
      send(nthAddress(h1.subnet, 77), victim.ip, 'own-subnet-to-neighbour')
      send(nthAddress(h1.subnet, 77), peer.ip, 'own-subnet-to-other-host')
      await genuine('genuine-after')
      await sleep(300)
      const got = [...atVictim.lines(), ...atPeer.lines()]
      t.ok(got.includes('genuine-after'), 'genuine datagrams arrive before and after the forged ones')
      for (const forged of [
        'outside-to-neighbour',
        'outside-to-other-host',
        'own-subnet-to-neighbour',
        'own-subnet-to-other-host',
      ])
        t.notOk(got.includes(forged), `forged source not delivered: ${forged}`)

      // IPv6 (in the records of both): the thief advertises its own address, then the victim's, then its
      // link-local one; only its own arrive
      const v6 = { victim: 'fd00:1::2', thief: 'fd00:1::3' }
      const records = [
        [victim, v6.victim],
        [thief, v6.thief],
      ] as const
      for (const [c, ip] of records) {
        nsExec(c.name, 'ip', ['-6', 'addr', 'add', `${ip}/64`, 'dev', 'eth0', 'nodad'])
        const veth = c.veth as string
        h1.endpoints.set(veth, { ...(h1.endpoints.get(veth) as SpoofEndpoint), ipv6: ip })
      }
      await h1.reconciler.reconcile()
      const advertised = receive(victim.name, 60_000, RECEIVE_NA)
      t.teardown(() => advertised.stop())
      await waitFor(() => advertised.lines().includes('ready'), 30_000)
      const advertise = (target: string) =>
        nsExec(thief.name, 'python3', ['-c', SEND_NA, v6.victim, target, thief.mac as string])
      const arrives = async (target: string) => {
        const by = Date.now() + 10_000
        while (!advertised.lines().includes(target) && Date.now() < by) {
          advertise(target)
          await sleep(200)
        }
      }
      await arrives(v6.thief)
      const FORGED_NA = 3
      for (let i = 0; i < FORGED_NA; i++) advertise(v6.victim)
      await arrives(linkLocalOf(thief.mac as string))
      t.same(
        advertised.lines().filter((l) => l !== 'ready' && l !== v6.thief),
        [linkLocalOf(thief.mac as string)],
        "advertisements for the thief's own addresses arrive, none for the victim's",
      )
      // back to IPv4 only, so everything the thief sends from here on is a spoof
      const { ipv6: _, ...v4only } = h1.endpoints.get(thief.veth as string) as SpoofEndpoint
      h1.endpoints.set(thief.veth as string, v4only)
      await h1.reconciler.reconcile()

      // a full pass reads the kernel's rule counters; one can fail under load, so read until `least` or 30 s
      const spoofDrops = () =>
        h1.metrics.value('plexus_datapath_firewall_dropped_packets_total', { section: 'spoof' })
      const dropped = async (least: number) => {
        const by = Date.now() + 30_000
        do await h1.reconciler.reconcile()
        while ((await spoofDrops()) < least && Date.now() < by)
        return spoofDrops()
      }
      const beforeAttack = await dropped(4 + FORGED_NA)
      t.ok(
        beforeAttack >= 4 + FORGED_NA,
        `the forged datagrams and advertisements are counted (datapath.spoof.dropped ${beforeAttack})`,
      )
      const sentByThief = () =>
        Number(nsExec(thief.name, 'cat', ['/sys/class/net/eth0/statistics/tx_packets']))
      const thiefSentBefore = sentByThief()

      // the thief takes the victim's address (ARP announces it as the thief's MAC), then its MAC too
      const gateway = nthAddress(h1.subnet, 1)
      const impersonate = (mac?: string) => {
        nsExec(thief.name, 'ip', ['addr', 'flush', 'dev', 'eth0'])
        if (mac) nsExec(thief.name, 'ip', ['link', 'set', 'dev', 'eth0', 'address', mac])
        nsExec(thief.name, 'ip', ['addr', 'add', `${victim.ip}/24`, 'dev', 'eth0'])
        nsExec(thief.name, 'ip', ['route', 'replace', 'default', 'via', gateway])
      }
      for (const [what, mac] of [
        ['address', undefined],
        ['address and MAC', victim.mac],
      ] as const) {
        impersonate(mac)
        const [fromThief, toVictim] = await Promise.all([
          pings(thief.name, peer.ip),
          pings(peer.name, victim.ip),
        ])
        t.equal(
          fromThief.received,
          0,
          `with the victim's ${what}, the thief gets no replies (${fromThief.out})`,
        )
        t.equal(toVictim.sent, PINGS)
        t.equal(toVictim.received, PINGS, `the victim answers every ping meanwhile (${toVictim.out})`)
      }

      // every frame the thief sent since it took the victim's address is a spoof (ARP, IPv4, its IPv6 chatter)
      const spoofed = sentByThief() - thiefSentBefore
      const counted = (await dropped(beforeAttack + spoofed)) - beforeAttack
      t.ok(
        spoofed > 0 && counted >= spoofed,
        `all ${spoofed} frames the thief sent are counted as dropped (${counted})`,
      )
    },
  )
}
