import t from 'tap'
import { CLUSTER, Cluster, run, uniqueName, upCluster } from '../helpers/fixture.js'

function machineSnapshot() {
  return {
    netns: run('ip', ['netns', 'list']).stdout,
    links: run('ip', ['-o', 'link', 'show']).stdout.replace(/\s+\\.*$/gm, ''),
    iptables: run('iptables-save', []).stdout.replace(/^#.*$/gm, ''),
    nft: run('nft', ['list', 'ruleset']).stdout,
  }
}

t.test('up, exec plexctl in a host, SIGKILL everything, down leaves the machine as it was', async (t) => {
  const before = machineSnapshot()
  const c = upCluster(t, { hosts: 3 })

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
  const after = machineSnapshot()
  t.equal(after.netns, before.netns, 'no namespace left')
  t.equal(after.links, before.links, 'no link left')
  t.equal(after.iptables, before.iptables, 'iptables unchanged')
  t.equal(after.nft, before.nft, 'nftables unchanged')
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
