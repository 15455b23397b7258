// The first container of a freshly started host resolves names at once: its
// ADD answers only when the DNS server named in the result answers on that
// address. A fresh host, 20 times over: the agent stopped, its state and
// bridge removed, started again; the runtime's ADD retried until it succeeds
// (code 11 while the host has no lease yet), and a query sent from the
// container the moment ADD returns.
import t from 'tap'
import { run, upCluster } from '../../helpers/fixture.js'
import { containerNs, hostNs, netconf, plugin, waitReady } from './plugin.js'

t.setTimeout(1_800_000)
const ROUNDS = 20
// a short settle period: what is tested is the first ADD after the lease, not how long a claim waits
const c = upCluster(t, { hosts: 1, prefix: 'cf', agentConfig: { network: { leaseSettleMs: 500 } } })
const H = 'h1'
await waitReady(c, H)
const stateDir = `/run/plexus-fixture/${c.name}/${H}/state`

t.test(
  `a query sent the moment ADD returns is answered, first container of a fresh host, ${ROUNDS} times`,
  async (t) => {
    const nsName = `${c.name}-first`
    const netns = containerNs(t, nsName)
    const conf = netconf(c, H)
    let stopped = false
    t.teardown(() => {
      if (stopped) c.start(H)
    })
    for (let i = 0; i < ROUNDS; i++) {
      t.equal(c.stop(H).status, 0, `round ${i}: agent stopped`)
      stopped = true
      // a fresh host: no state, no bridge (and so no gateway address for the DNS server to bind)
      run('rm', ['-rf', stateDir])
      run('ip', ['-n', hostNs(c, H), 'link', 'del', 'plexus0'])
      t.equal(c.start(H).status, 0, `round ${i}: agent started`)
      stopped = false
      const id = `first-${i}`
      let add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
      const deadline = Date.now() + 120_000
      while (add.out?.code === 11 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
        add = plugin(c, H, { command: 'ADD', containerId: id, netns }, conf)
      }
      t.equal(add.status, 0, `round ${i}: ADD ${add.raw}`)
      const server =
        (add.out as { dns?: { nameservers?: string[] } } | undefined)?.dns?.nameservers?.[0] ?? ''
      const q = run('ip', [
        ...['netns', 'exec', nsName],
        ...['dig', '+tries=1', '+time=1', `@${server}`, `${H}.node.plexus.internal`],
      ])
      t.ok(
        q.status === 0 && /status: \w+/.test(q.stdout),
        `round ${i}: ${server} answered: ${q.stdout}${q.stderr}`,
      )
      t.equal(plugin(c, H, { command: 'DEL', containerId: id, netns }, conf).status, 0, `round ${i}: DEL`)
    }
  },
)
