// Published ports on the test bed, for both firewall backends: a container on
// h1 serving TCP and UDP, published on fixed and random ports, reached from
// h2 (source address preserved), from another container on h1 (hairpin) and
// from h1's 127.0.0.1; conflicts and bad input refused with nothing applied;
// every rule gone after `cluster rm`.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { type Cluster, eventually, QUICK_LEASES, REPO, upCluster } from '../helpers/fixture.js'

// fixture work that outlasts tap's 300 s default on a loaded 2-core machine (ports.test did in a helper's run)
t.setTimeout(900_000)

const ECHO = join(REPO, 'dist/test/helpers/echo.js')
const H1 = '192.0.2.11'
const H2 = '192.0.2.12'

interface Row {
  host: string
  hostAddress: string
  hostPort: number
  protocol: 'tcp' | 'udp'
  container: string
  containerPort: number
}

function ask(
  c: Cluster,
  where: { host: string } | { ctr: string },
  proto: string,
  addr: string,
  port: number,
) {
  const cmd = ['node', ECHO, 'ask', proto, addr, String(port)]
  const r = 'host' in where ? c.exec(where.host, cmd) : c.execCtr(where.ctr, cmd)
  return r.status === 0 ? r.stdout.trim() : `failed: ${r.stderr.trim()}`
}

/** the `ports` section's rule tags in h1's firewall, as the kernel shows them */
function portRules(c: Cluster, firewall: string): string[] {
  const dump =
    firewall === 'nftables' ? c.exec('h1', ['nft', 'list', 'ruleset']) : c.exec('h1', ['iptables-save'])
  return dump.stdout.match(/plexus:ports\/[a-z0-9-]+/g) ?? []
}

for (const firewall of ['iptables', 'nftables']) {
  t.test(`published ports (${firewall})`, async (t) => {
    const c = upCluster(t, { hosts: 2, firewall, prefix: 'pp', agentConfig: QUICK_LEASES })
    const web = c.run(
      'h1',
      'web',
      ['node', ECHO, 'serve', '8080', '5353'],
      [
        '--publish',
        '18080:8080',
        '--publish',
        '0:8080',
        '--publish',
        '15353:5353/udp',
        '--publish',
        '0:5353/udp',
      ],
    )
    t.equal(web.status, 0, web.stderr)
    const cli = c.run('h1', 'cli', ['sleep', '600'])
    t.equal(cli.status, 0, cli.stderr)

    const local = c.plexctlJson<Row[]>('h1', ['port', 'ls'])
    t.equal(local.length, 4, 'four mappings on h1')
    const randomTcp = local.find((r) => r.protocol === 'tcp' && r.hostPort !== 18080)?.hostPort ?? 0
    const randomUdp = local.find((r) => r.protocol === 'udp' && r.hostPort !== 15353)?.hostPort ?? 0
    for (const p of [randomTcp, randomUdp]) t.ok(p >= 49152 && p <= 65535, `random port ${p} from the range`)

    const everywhere = await eventually(() => {
      const rows = c.plexctlJson<Row[]>('h2', ['ports'])
      return rows.length === 4 && rows.every((r) => r.host === 'h1' && r.hostAddress === H1)
        ? rows
        : undefined
    })
    t.ok(everywhere, 'h2 lists h1 published ports with its underlay address')

    const targets: [string, number][] = [
      ['tcp', 18080],
      ['tcp', randomTcp],
      ['udp', 15353],
      ['udp', randomUdp],
    ]
    for (const [proto, port] of targets) {
      t.equal(
        ask(c, { host: 'h2' }, proto, H1, port),
        `${proto} ${H2}`,
        `${proto}/${port} from h2, source kept`,
      )
      t.match(
        ask(c, { ctr: 'cli' }, proto, H1, port),
        new RegExp(`^${proto} 10\\.244\\.`),
        `${proto}/${port} hairpin`,
      )
      t.match(ask(c, { ctr: 'web' }, proto, H1, port), new RegExp(`^${proto} `), `${proto}/${port} to itself`)
      t.match(
        ask(c, { host: 'h1' }, proto, '127.0.0.1', port),
        new RegExp(`^${proto} `),
        `${proto}/${port} from 127.0.0.1`,
      )
    }

    // direct traffic between containers on the bridge is not masqueraded (br_netfilter shows it to postrouting too)
    const ipOf = (out: string) => /(\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? '?'
    const [webIp, cliIp] = [ipOf(web.stdout), ipOf(cli.stdout)]
    t.equal(ask(c, { ctr: 'cli' }, 'tcp', webIp, 8080), `tcp ${cliIp}`, 'direct tcp keeps its source')
    t.equal(ask(c, { ctr: 'cli' }, 'udp', webIp, 5353), `udp ${cliIp}`, 'direct udp keeps its source')

    // ---- conflicts and bad input: refused, with nothing applied ----
    const before = portRules(c, firewall).sort()
    const taken = c.run('h1', 'web2', ['sleep', '600'], ['--publish', '18080:80'])
    t.not(taken.status, 0, 'a second container cannot take 18080')
    t.match(taken.stderr, /18080\/tcp is already taken by container \\?"web/)
    t.match(taken.stderr, /"code":11/, 'CNI code 11 (try again later)')
    const foreign = c.run('h1', 'web3', ['sleep', '600'], ['--publish', '203.0.113.7:18081:80'])
    t.not(foreign.status, 0)
    t.match(foreign.stderr, /203\.0\.113\.7 is not an address of this host/)
    t.match(foreign.stderr, /"code":7/, 'CNI code 7 (invalid config)')
    const ls = c.cli(['ls', '--name', c.name]).stdout
    t.notMatch(ls, /web2|web3/, 'the refused containers are gone')
    t.same(portRules(c, firewall).sort(), before, 'no rule changed')

    const outOfRange = c.run('h1', 'web4', ['sleep', '600'], ['--publish', '70000:80'])
    t.not(outOfRange.status, 0)
    t.match(outOfRange.stderr, /hostPort/)
    t.match(outOfRange.stderr, /"code":7/, 'a port out of range is the runtime config: code 7')

    // host processes: a TCP listener and a bound UDP socket, named in the refusal
    const hostNs = `${c.name}-h1`
    const holders = [
      ['tcp', 19000, ['busybox', 'nc', '-l', '-p', '19000'], ['-Htln'], 'busybox'],
      ['udp', 19001, ['node', ECHO, 'serve', '19002', '19001'], ['-Huan'], 'node'],
    ] as const
    for (const [proto, port, cmd, ssArgs, name] of holders) {
      const holder = spawn('ip', ['netns', 'exec', hostNs, ...cmd], { stdio: 'ignore' })
      t.teardown(() => {
        holder.kill()
      })
      await eventually(() =>
        c.exec('h1', ['ss', ...ssArgs, `sport = :${port}`]).stdout.includes(String(port)),
      )
      const bound = c.exec('h1', ['plexctl', 'port', 'publish', 'web', `${port}:8080/${proto}`])
      t.equal(bound.status, 1)
      t.match(bound.stderr, `${port}/${proto} is already taken by host process "${name}" (pid ${holder.pid})`)
      t.match(bound.stderr, /PLX_PORTS_CONFLICT/)
    }
    for (const [spec, why] of [
      ['70000:8080', /host port 70000 is outside 1-65535/],
      ['18090:0', /container port 0 is outside 1-65535/],
      ['18090:8080/sctp', /protocol "sctp" is not tcp or udp/],
      ['203.0.113.7:18090:8080', /203\.0\.113\.7 is not an address of this host/],
    ] as const) {
      const r = c.exec('h1', ['plexctl', 'port', 'publish', 'web', spec])
      t.equal(r.status, 1, spec)
      t.match(r.stderr, why)
      t.match(r.stderr, /PLX_PORTS_INVALID/)
    }
    const ctr2 = c.exec('h1', ['plexctl', 'port', 'publish', 'web', '15353:5353/udp'])
    t.match(ctr2.stderr, /15353\/udp is already taken by container "web"/, 'its own port twice')
    const nobody = c.exec('h2', ['plexctl', 'port', 'publish', 'web', '18090:8080'])
    t.match(nobody.stderr, /container "web" runs on host h1/)
    t.same(portRules(c, firewall).sort(), before, 'still no rule changed')

    // ---- API publish bound to one address, unpublish ----
    const pub = c.plexctlJson<Row>('h1', ['port', 'publish', 'web', `${H1}:18082:8080`])
    t.match(pub, { hostAddress: H1, hostPort: 18082, containerPort: 8080, protocol: 'tcp' })
    t.equal(ask(c, { host: 'h2' }, 'tcp', H1, 18082), `tcp ${H2}`, 'API-published port reached from h2')
    t.match(
      ask(c, { host: 'h1' }, 'tcp', '127.0.0.1', 18082),
      /^failed/,
      'bound to the underlay address only',
    )
    const un = c.exec('h1', ['plexctl', 'port', 'unpublish', 'web', '18080'])
    t.equal(un.status, 0, un.stderr)
    t.match(ask(c, { host: 'h2' }, 'tcp', H1, 18080), /^failed/, 'unpublished port no longer answers')
    t.equal(ask(c, { host: 'h2' }, 'tcp', H1, randomTcp), `tcp ${H2}`, 'the others still do')
    const again = c.exec('h1', ['plexctl', 'port', 'unpublish', 'web', '18080'])
    t.match(again.stderr, /PLX_PORTS_NOT_PUBLISHED/)

    // ---- removal: no rule remains ----
    t.equal(c.rm('web').status, 0)
    t.equal(c.rm('cli').status, 0)
    const clean = await eventually(() => portRules(c, firewall).length === 0, 10_000)
    t.ok(clean, `no ports rule left in h1's ${firewall} ruleset`)
    t.equal(
      c.exec('h1', ['cat', '/proc/sys/net/ipv4/conf/plexus0/route_localnet']).stdout.trim(),
      '0',
      'route_localnet back off with nothing published',
    )
    t.same(c.plexctlJson<Row[]>('h1', ['ports']), [])
  })
}
