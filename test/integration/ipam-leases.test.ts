// Host-subnet leases between real agents in the netns test bed, talking over
// the real cluster transport: first two hosts in 10.99.0.0/23 (two /24
// subnets), then from scratch with exactly one free subnet (SubnetMin =
// SubnetMax = 10.99.1.0) and a short lease TTL.
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { Cluster, eventually, REPO, uniqueName } from '../helpers/fixture.js'
import { hostApi } from '../helpers/runner.js'

// a multi-host fixture run outlasts tap's 300 s file default on a loaded 2-core machine
t.setTimeout(1_200_000)

const AGENT_JS = join(REPO, 'dist/src/agent/main.js')
const TTL_MS = 30_000
const SETTLE_MS = 3000
const NETWORK = '10.99.0.0/23'
const ONLY_SUBNET = '10.99.1.0/24'
/** polls ask the agent's API socket (milliseconds of work, no process start), so they can be frequent */
const POLL_MS = 200
/** an answer slower than this counts as none (an agent that stopped answering must not stall a poll) */
const ASK_MS = 10_000

interface HostInfo {
  name: string
  ns: string
  socket: string
}

interface Subnets {
  leases: { subnet: string; host: string; publicIp: string; self: boolean }[]
  invalid: unknown[]
  self: { state: string; reason?: string; subnet?: string }
}

const hostDir = (h: HostInfo) => dirname(dirname(h.socket))

function hostsOf(c: Cluster): HostInfo[] {
  return (JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as { hosts: HostInfo[] }).hosts
}

/**
 * (Re)starts a host's agent with the fixture's config, a one-subnet network
 * seed and a short lease TTL.
 * The fixture has no option for agent settings yet, so this writes the pid
 * where the fixture looks for it (its `stop` and `down` then manage the
 * process as their own).
 */
function startWithShortTtl(h: HostInfo): void {
  const dir = hostDir(h)
  const base = JSON.parse(readFileSync(join(dir, 'plexusd.json'), 'utf8'))
  const file = join(dir, 'plexusd-ipam.json')
  const seed = { ...base.network.seed, SubnetMin: '10.99.1.0', SubnetMax: '10.99.1.0' }
  // A 30 s lease needs a small drift bound, quick renewals and node records refreshed often (leaseTiming:
  // confirmation follows the members' node records); with two hosts, the survivor is a majority only once
  // the dead host's node record is reaped, so reaping is made quick too.
  const network = {
    ...base.network,
    seed,
    leaseTtlMs: TTL_MS,
    leaseSettleMs: SETTLE_MS,
    leaseRenewMs: 2000,
    leaseClockDriftMs: 1000,
  }
  const cluster = { ...base.cluster, reapAfterMs: 10_000, refreshIntervalMs: 3000 }
  writeFileSync(file, JSON.stringify({ ...base, network, cluster }))
  // Started through sh in the background, so the agent is not our child: a SIGKILLed child of this
  // process would stay a zombie (and look alive to the fixture) while we block in spawnSync.
  const sh = `ip netns exec ${h.ns} ${process.execPath} ${AGENT_JS} --config ${file} </dev/null >>${join(dir, 'plexusd.log')} 2>&1 & echo $!`
  const pid = spawnSync('sh', ['-c', sh], { encoding: 'utf8' }).stdout.trim()
  writeFileSync(join(dir, 'plexusd.pid'), `${pid}\n`)
}

/** GET /v1/subnets from the host's agent (what `plexctl -o json subnets` prints); undefined while it (re)starts */
function subnets(c: Cluster, host: string): Promise<Subnets | undefined> {
  return hostApi<Subnets>(c, host, 'GET', '/v1/subnets', undefined, { timeoutMs: ASK_MS }).catch(
    () => undefined,
  )
}

const state = async (c: Cluster, host: string) => (await subnets(c, host))?.self.state

/** The agent log's last lines, for failure messages. */
const logTail = (h: HostInfo) =>
  readFileSync(join(hostDir(h), 'plexusd.log'), 'utf8')
    .split('\n')
    .slice(-12)
    .join('\n')
    .slice(-3000)

function exactlyOneHolds(c: Cluster): Promise<boolean> {
  return eventually(
    async () => {
      const s = (await Promise.all([state(c, 'h1'), state(c, 'h2')])).sort()
      return s[0] === 'acquired' && s[1] === 'no-subnet'
    },
    60_000,
    POLL_MS,
  )
}

t.test(
  'one free subnet: exactly one of two hosts started together gets it; restart, death and return',
  async (t) => {
    const c = new Cluster(uniqueName('ip'))
    t.teardown(() => {
      c.down()
    })
    // The fixture starts both agents together, seeded with this network; it returns once both hold a lease.
    const up = c.cli(['up', '--name', c.name, '--hosts', '2', '--cidr', NETWORK])
    t.equal(up.status, 0, up.stderr)
    const both = ((await subnets(c, 'h1'))?.leases ?? []).map((l) => `${l.host} ${l.subnet}`).sort()
    t.equal(both.length, 2, `two leases: ${both.join(', ')}`)
    t.not(both[0]?.split(' ')[1], both[1]?.split(' ')[1], 'in different subnets')

    // Again from empty state with one free subnet and a short lease TTL, so the rest can watch leases expire.
    const hosts = hostsOf(c)
    for (const h of hosts) {
      t.equal(c.stop(h.name).status, 0)
      rmSync(join(hostDir(h), 'state'), { recursive: true, force: true })
      rmSync(join(hostDir(h), 'run/subnet.env'), { force: true })
      writeFileSync(join(hostDir(h), 'plexusd.log'), '')
    }
    for (const h of hosts) startWithShortTtl(h) // as close to the same instant as two spawns get
    t.ok(
      await exactlyOneHolds(c),
      `again: one acquired, one without (h1 ${await state(c, 'h1')}, h2 ${await state(c, 'h2')})`,
    )

    const states = await Promise.all(hosts.map((h) => state(c, h.name)))
    const winner = hosts[states.indexOf('acquired')] as HostInfo
    const loser = hosts.find((h) => h !== winner) as HostInfo
    t.equal((await subnets(c, winner.name))?.self.subnet, ONLY_SUBNET)
    const ls = (await subnets(c, loser.name)) as Subnets
    t.match(
      ls.self.reason,
      /^no free subnet: all 1 \/24 subnet from 10\.99\.1\.0 to 10\.99\.1\.0 in 10\.99\.0\.0\/23 are held \(10\.99\.1\.0\/24 h[12]\)/,
    )
    t.same(
      ls.leases.map((l) => `${l.host} ${l.subnet}`),
      [`${winner.name} ${ONLY_SUBNET}`],
      'the loser sees the winner and no claim of its own',
    )
    t.same(ls.invalid, [], 'no conflicting record is left behind')
    const neverAcquired = (when: string) =>
      t.notMatch(
        readFileSync(join(hostDir(loser), 'plexusd.log'), 'utf8'),
        /acquired lease/,
        `the loser never acquired the subnet, not even briefly (${when})`,
      )
    neverAcquired('once one holds it')
    t.equal(
      readFileSync(join(hostDir(winner), 'run/subnet.env'), 'utf8'),
      `FLANNEL_NETWORK=${NETWORK}\nFLANNEL_SUBNET=10.99.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
    )

    // Restart (within the TTL): the same subnet; the other host still waits.
    t.equal(c.stop(winner.name).status, 0)
    startWithShortTtl(winner)
    if (!(await eventually(async () => (await state(c, winner.name)) === 'acquired', 60_000, POLL_MS))) {
      t.fail(`restarted host did not acquire its lease again; its log:\n${logTail(winner)}`)
    }
    t.equal((await subnets(c, winner.name))?.self.subnet, ONLY_SUBNET, 'restart keeps the subnet')
    // while the winner was away the loser heard no majority of two (isolated, claiming nothing); it waits
    // again once it hears the winner (neverAcquired below: it never took the subnet meanwhile)
    t.ok(
      await eventually(async () => (await state(c, loser.name)) === 'no-subnet', 30_000, POLL_MS),
      `the other host waits again (now ${await state(c, loser.name)})`,
    )
    // polls answer within 200 ms now: the log check again, over the whole time the winner held the subnet
    neverAcquired("through the winner's restart")

    // Death: the lease expires after the TTL and the waiting host takes the subnet.
    const killedAt = Date.now()
    t.equal(c.stop(winner.name, 'KILL').status, 0)
    t.ok(
      await eventually(
        async () => (await subnets(c, loser.name))?.self.subnet === ONLY_SUBNET,
        TTL_MS * 4,
        POLL_MS,
      ),
      'the waiting host took the freed subnet',
    )
    const tookMs = Date.now() - killedAt
    t.ok(tookMs >= TTL_MS / 2, `not before the lease could have expired (${tookMs} ms)`)
    t.comment(
      `subnet of a killed host re-leased after ${tookMs} ms (TTL ${TTL_MS} ms, renewed every 2000 ms)`,
    )

    // Return: the old holder comes back with its subnet.env naming the subnet; it must not steal it back.
    startWithShortTtl(winner)
    t.ok(
      await eventually(async () => (await state(c, winner.name)) === 'no-subnet', 60_000, POLL_MS),
      'the returning host has no subnet',
    )
    // the new holder may still be settling its claim: a majority of two needs the returning host heard
    t.ok(
      await eventually(async () => (await state(c, loser.name)) === 'acquired', 30_000, POLL_MS),
      `the new holder's claim settles (now ${await state(c, loser.name)})`,
    )
    await new Promise((r) => setTimeout(r, SETTLE_MS * 2))
    t.equal((await subnets(c, loser.name))?.self.subnet, ONLY_SUBNET, 'the new holder keeps the subnet')
    t.equal(await state(c, loser.name), 'acquired')
    t.match((await subnets(c, winner.name))?.self.reason, /no free subnet/)

    // What an operator sees.
    const table = c.exec(loser.name, ['plexctl', 'subnets']).stdout
    t.match(
      table,
      /^SUBNET\s+HOST\s+ADDRESS\s+BACKEND\s+EXPIRES IN\n10\.99\.1\.0\/24 \*\s+h\d\s+192\.0\.2\.1\d\s+vxlan\s+\d+s\n$/,
    )
    t.match(c.exec(winner.name, ['plexctl', 'subnets']).stdout, /\nthis host: no-subnet: no free subnet: /)
    t.match(c.exec(winner.name, ['plexctl', 'network', 'show']).stdout, /^network:\s+10\.99\.0\.0\/23\n/)
  },
)
