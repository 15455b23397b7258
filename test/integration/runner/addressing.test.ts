// A job group's `network` (issue 17, item 4) on a real agent: the runner hands
// the MAC, gateway and routes to CNI ADD as a runtime would, and the task's
// namespace has them; a static address in a group of two is refused at
// submission with its reason.
import t from 'tap'
import type { EndpointDetail } from '../../../src/api/contract/endpoints.js'
import { netnsName } from '../../../src/runner/network.js'
import { eventually, upCluster } from '../../helpers/fixture.js'
import { type Alloc, hostApi, SLEEP_TASKS } from '../../helpers/runner.js'
import { waitReady } from '../cni/plugin.js'

t.setTimeout(600_000)

const c = upCluster(t, { hosts: 1, prefix: 'ja' })
const { subnet } = await waitReady(c, 'h1')
const base = subnet.replace(/\.0\/\d+$/, '')

const job = (name: string, count: number, network: string) => `name: ${name}
type: service
groups:
  - name: g
    count: ${count}
    network:
${network}
${SLEEP_TASKS}`

t.test("a group's MAC, gateway and routes are in its allocation's namespace", async (t) => {
  const mac = '02:42:ac:11:00:77'
  const text = job(
    'net',
    1,
    `      mac: "${mac}"
      gateway: ${base}.200
      routes:
        - { dst: 192.168.60.0/24, gw: ${base}.201 }
        - { dst: 172.22.0.0/16 }`,
  )
  await hostApi(c, 'h1', 'PUT', '/v1/jobs', { text })
  t.teardown(() => hostApi(c, 'h1', 'DELETE', '/v1/jobs/net').catch(() => undefined))
  const a = await eventually(
    async () =>
      (await hostApi<Alloc[]>(c, 'h1', 'GET', '/v1/allocs?job=net').catch(() => undefined))?.find(
        (x) => x.status === 'running',
      ),
    60_000,
    200,
  )
  t.ok(a, 'the allocation runs')
  if (!a) return
  // the namespace's name lives in the agent's mount namespace (src/runner/README.md): read it through the agent
  // one endpoint: plexctl prints it alone, not in a list
  const e = c.plexctlJson<EndpointDetail>('h1', ['inspect', a.id])
  const live = e?.live?.container
  t.equal(e?.netns, `/run/netns/${netnsName(a.id)}`, "the allocation's namespace")
  t.equal(live?.mac, mac)
  t.same(
    live?.routes.filter((r) => r.gateway).sort((x, y) => x.dst.localeCompare(y.dst)),
    [
      { dst: '0.0.0.0/0', gateway: `${base}.200` },
      { dst: '172.22.0.0/16', gateway: `${base}.200` },
      { dst: '192.168.60.0/24', gateway: `${base}.201` },
    ],
  )
  t.same(e?.live?.problems, [], 'CHECK finds nothing wrong')
})

t.test('a static address in a group of two is refused with its reason', async (t) => {
  const text = job('two', 2, `      ip: ${base}.50`)
  const err = await hostApi(c, 'h1', 'PUT', '/v1/jobs', { text }).then(
    () => undefined,
    (e: Error) => e.message,
  )
  t.match(err, /400/)
  t.match(err, /groups\.0\.network\.ip.*static address, one container's: the group runs 2 allocations/)
})
