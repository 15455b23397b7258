// Three hosts, containers attached by `netns-fixtures/cluster run` (which runs
// the real plugin exactly as a runtime would): every host lists every
// container within a second of its ADD returning, and they reach each other.
import t from 'tap'
import { createClient } from '../../../src/cli/client.js'
import { eventually, upCluster } from '../../helpers/fixture.js'
import { socketOf, waitReady } from './plugin.js'

t.setTimeout(300_000)
const c = upCluster(t, { hosts: 3, prefix: 'c3' })
const hosts = ['h1', 'h2', 'h3']
for (const h of hosts) await waitReady(c, h)

interface Row {
  name: string
  host: string
  ipv4: string
  ifname: string
  service?: string
}
const listing = (h: string) => c.plexctlJson<Row[]>(h, ['endpoints'])

t.test('each ADD is listed on every host within a second', async (t) => {
  // the agents' API directly (plexctl's own start-up would dominate the figure)
  const api = Object.fromEntries(hosts.map((h) => [h, createClient(socketOf(c, h))]))
  const listed = async (h: string, name: string) =>
    (await api[h]!.call<{ endpoints: Row[] }>('GET', '/v1/endpoints')).endpoints.some((e) => e.name === name)
  for (const [i, h] of hosts.entries()) {
    const r = c.run(h, `web${i}`, ['sleep', '600'], ['--service', 'web'])
    t.equal(r.status, 0, r.stderr)
    const returned = Date.now()
    const after = await Promise.all(
      hosts.map(async (other) =>
        (await eventually(() => listed(other, `web${i}`), 1000, 10)) ? Date.now() - returned : -1,
      ),
    )
    for (const [j, ms] of after.entries()) {
      t.ok(ms >= 0 && ms <= 1000, `${hosts[j]} lists web${i} (ADD on ${h}) ${ms} ms after the ADD returned`)
    }
  }
  const rows = listing('h2')
  t.same(rows.map((r) => [r.name, r.host, r.ifname, r.service]).sort(), [
    ['web0', 'h1', 'eth0', 'web'],
    ['web1', 'h2', 'eth0', 'web'],
    ['web2', 'h3', 'eth0', 'web'],
  ])
})

t.test('containers reach each other across hosts', async (t) => {
  const rows = listing('h1')
  for (const from of rows) {
    for (const to of rows) {
      if (from === to) continue
      const r = c.execCtr(from.name, ['ping', '-c1', '-W2', to.ipv4])
      t.equal(r.status, 0, `${from.name}@${from.host} → ${to.name}@${to.host} (${to.ipv4})`)
    }
  }
})

t.test('plexctl inspect shows one container with its live state', async (t) => {
  // one match: plexctl -o json prints the endpoint itself
  const e = c.plexctlJson<{ name: string; live?: { problems: string[] } }>('h1', ['inspect', 'web0'])
  t.equal(e?.name, 'web0')
  t.same(e?.live?.problems, [], 'no drift')
  const text = c.exec('h1', ['plexctl', 'inspect', 'web0']).stdout
  t.match(text, /veth state:.*on plexus0/)
  t.match(text, /dns search:\s+svc\.plexus\.internal, plexus\.internal/)
  const remote = c.exec('h1', ['plexctl', 'inspect', 'web2']).stdout
  t.match(remote, /host:\s+h3/, 'remote endpoints are shown from the store')
  t.equal(c.exec('h1', ['plexctl', 'inspect', 'nope']).status, 1, 'unknown container: exit 1')
})

t.test('cluster rm (CNI DEL) removes the container everywhere', async (t) => {
  for (const i of [0, 1, 2]) t.equal(c.rm(`web${i}`).status, 0)
  for (const h of hosts) t.ok(await eventually(() => listing(h).length === 0, 2000), `${h} lists nothing`)
})
