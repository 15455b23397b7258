import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import t from 'tap'
import { CLUSTER, Cluster, run, uniqueName } from '../helpers/fixture.js'

// `up`, containers with a published port and a service, the stub DNS answering, then
// SIGKILL to the agents (containers and stub DNS left running), then `down`: the machine
// must be as it was.
// The root namespace is compared whole (links, addresses, routes, rules, both firewall
// rulesets, mounts); namespaces, processes and files are compared whole too, except for
// what other tests running beside this one make (namespaces and fixture dirs of other
// clusters come and go, so only those are left out, by their names).
function machineSnapshot(name: string) {
  const others = (mountPoint: string) => !mountPoint.startsWith('/run/netns/') || mountPoint.includes(name)
  // comments (dates) and packet counters change on their own
  const lines = (cmd: string, args: string[]) =>
    run(cmd, args)
      .stdout.replace(/^#.*$/gm, '')
      .replace(/\[\d+:\d+\]/g, '')
      .replace(/counter packets \d+ bytes \d+/g, 'counter')
  return {
    netns: run('ip', ['netns', 'list'])
      .stdout.split('\n')
      .filter((l) => l.startsWith(`${name}-`))
      .join('\n'),
    links: lines('ip', ['-o', 'link', 'show']).replace(/^\d+: /gm, ''),
    addresses: lines('ip', ['-o', 'addr', 'show']),
    routes: lines('ip', ['route', 'show', 'table', 'all']),
    rules: lines('ip', ['rule', 'show']),
    iptables: lines('iptables-save', []),
    legacy: lines('iptables-legacy-save', []),
    nft: lines('nft', ['list', 'ruleset']),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ').slice(4, 5).join(' '))
      .filter(others)
      .sort()
      .join('\n'),
    files: ['/etc/netns', '/run/plexus-fixture', '/run/netns']
      .flatMap((d) => (exists(d) ? readdirSync(d).map((f) => `${d}/${f}`) : []))
      .filter((f) => f.includes(name))
      .join('\n'),
  }
}

const exists = (p: string) => {
  try {
    statSync(p)
    return true
  } catch {
    return false
  }
}

/** Network namespace inode of every process on the machine (pid → net:[inode]). */
function processNetns(): Map<number, string> {
  const m = new Map<number, string>()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      m.set(Number(d), readlinkSync(`/proc/${d}/ns/net`))
    } catch {
      // gone meanwhile
    }
  }
  return m
}

t.test(
  'up with containers, ports and stub DNS, SIGKILL the agents, down leaves the machine as it was',
  async (t) => {
    const c = new Cluster(uniqueName())
    const before = machineSnapshot(c.name)
    t.teardown(() => {
      c.down()
    })
    const up = c.cli(['up', '--name', c.name, '--hosts', '2'])
    t.equal(up.status, 0, up.stderr)
    t.not(machineSnapshot(c.name).netns, '', 'the cluster made namespaces')

    // through the fixture's own `exec` command (the Cluster handle enters namespaces without it)
    for (const h of ['h1', 'h2']) {
      const r = c.cli(['exec', '--name', c.name, '--host', h, '--', 'plexctl', '-o', 'json', 'status'])
      t.equal(r.status, 0, r.stderr)
      t.equal((JSON.parse(r.stdout) as { name: string }).name, h, `plexctl in ${h} talks to the ${h} agent`)
    }
    const web = c.run('h1', 'web', ['sleep', '600'], ['--service', 'web', '--publish', '18080:80'])
    t.equal(web.status, 0, `container with a published port and a service: ${web.stderr}`)
    const cli = c.run('h2', 'cli', ['sleep', '600'])
    t.equal(cli.status, 0, `a second container: ${cli.stderr}`)
    t.match(
      c.execUnderlay(['dig', '+short', '+time=2', '@192.0.2.1', 'example.test']).stdout,
      /203\.0\.113\.7/,
      'the stub DNS answers',
    )

    // every process of the cluster: those in its namespaces, and the shells waiting for the agents
    const ours = new Set(
      run('ip', ['netns', 'list'])
        .stdout.split('\n')
        .map((l) => l.split(' ')[0] ?? '')
        .filter((n) => n.startsWith(`${c.name}-`))
        .map((n) => statSync(`/run/netns/${n}`).ino),
    )
    const inNs = [...processNetns()].filter(([, ns]) => ours.has(Number(/\[(\d+)\]/.exec(ns)?.[1])))
    t.ok(
      inNs.length >= 5,
      `processes in the cluster's namespaces: ${inNs.length} (2 agents, 2 containers, stub DNS)`,
    )
    // the agents die hard; containers and the stub DNS are left running for down to end
    const ls = JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as {
      hosts: { agentPid: number | null }[]
    }
    t.equal(ls.hosts.filter((h) => h.agentPid).length, 2, 'both agents run')
    for (const h of ls.hosts) if (h.agentPid) process.kill(h.agentPid, 'SIGKILL')
    const down = c.down()
    t.equal(down.status, 0, `down succeeds after SIGKILL: ${down.stderr}`)
    const after = machineSnapshot(c.name)
    for (const k of Object.keys(before) as (keyof typeof before)[])
      t.equal(after[k], before[k], `${k} as before`)
    const left = [...processNetns()].filter(([, ns]) => ours.has(Number(/\[(\d+)\]/.exec(ns)?.[1])))
    t.same(left, [], "no process left in the cluster's (now deleted) namespaces")
    t.notMatch(
      run('ps', ['-eo', 'args']).stdout,
      new RegExp(`${c.name}[-/]`),
      'no process naming the cluster left',
    )
    t.equal(c.cli(['ls', '--name', c.name]).status, 2, 'the fixture no longer knows the cluster')
  },
)

t.test('down is idempotent and works on a cluster that never came up', async (t) => {
  const c = new Cluster(uniqueName())
  t.equal(c.down().status, 0)
  t.equal(c.down().status, 0)
})

t.test('bad input exits 2 with a reason', async (t) => {
  const bad = run(CLUSTER, ['up', '--name', 'Bad_Name', '--hosts', '2'])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--name must match/)
  const hosts = run(CLUSTER, ['up', '--name', uniqueName(), '--hosts', 'zero'])
  t.equal(hosts.status, 2)
  t.match(hosts.stderr, /--hosts/)
  const missing = run(CLUSTER, ['exec', '--name', uniqueName(), '--host', 'h1', '--', 'true'])
  t.equal(missing.status, 2)
  t.match(missing.stderr, /no cluster/)
})
