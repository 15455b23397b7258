import t from 'tap'
import { CLUSTER, Cluster, run, uniqueName } from '../helpers/fixture.js'

// Other tests run beside this one, so only what belongs to this cluster is compared,
// and the root namespace's firewall (which the fixture never touches) as a whole.
function machineSnapshot(name: string) {
  const ours = (text: string) =>
    text
      .split('\n')
      .filter((l) => l.includes(name))
      .join('\n')
  return {
    netns: ours(run('ip', ['netns', 'list']).stdout),
    links: ours(run('ip', ['-o', 'link', 'show']).stdout),
    iptables: run('iptables-save', []).stdout.replace(/^#.*$/gm, ''),
    nft: run('nft', ['list', 'ruleset']).stdout,
    files: ours(run('ls', ['/etc/netns', '/run/plexus-fixture']).stdout),
  }
}

t.test('up, exec plexctl in a host, SIGKILL everything, down leaves the machine as it was', async (t) => {
  const c = new Cluster(uniqueName())
  const before = machineSnapshot(c.name)
  t.teardown(() => {
    c.down()
  })
  const up = c.cli(['up', '--name', c.name, '--hosts', '3'])
  t.equal(up.status, 0, up.stderr)
  t.not(machineSnapshot(c.name).netns, '', 'the cluster made namespaces')

  for (const h of ['h1', 'h2', 'h3']) {
    const status = c.plexctlJson<{ name: string }>(h, ['status'])
    t.equal(status.name, h, `plexctl in ${h} talks to the ${h} agent`)
  }

  const ls = JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as {
    hosts: { name: string; agentPid: number | null }[]
  }
  t.same(
    ls.hosts.map((h) => h.name),
    ['h1', 'h2', 'h3'],
  )
  t.ok(
    ls.hosts.every((h) => typeof h.agentPid === 'number'),
    'every agent runs',
  )

  for (const h of ls.hosts) if (h.agentPid) process.kill(h.agentPid, 'SIGKILL')
  const down = c.down()
  t.equal(down.status, 0, `down succeeds after SIGKILL: ${down.stderr}`)
  const after = machineSnapshot(c.name)
  t.equal(after.netns, before.netns, 'no namespace left')
  t.equal(after.links, before.links, 'no link left')
  t.equal(after.iptables, before.iptables, 'iptables unchanged')
  t.equal(after.nft, before.nft, 'nftables unchanged')
  t.equal(after.files, before.files, 'no state or /etc/netns files left')
  t.notMatch(
    run('ps', ['-eo', 'args']).stdout,
    new RegExp(`${c.name}/h\\d+/plexusd.json`),
    'no agent process left',
  )
})

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
