// plexusd killed (SIGKILL) in the middle of ADD must give the runtime error 11
// or a complete result, never a half-configured container. The agent runs with
// PLEXUS_TEST_FAULTS (src/lib/faults.ts), which holds every ADD at one named
// step; the test watches the kernel and the agent's files until the ADD is
// there, then kills the agent, so each kill lands at a known step.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { eventually, run, upCluster } from '../../helpers/fixture.js'
import { allocations, containerNs, hostNs, hostVeths, netconf, PLUGIN, plugin, waitReady } from './plugin.js'

t.setTimeout(1_800_000) // one agent restart per kill: minutes on a loaded 2-core machine
const c = upCluster(t, { hosts: 1, prefix: 'ck' })
const H = 'h1'
await waitReady(c, H)
const stateDir = `/run/plexus-fixture/${c.name}/${H}/state`

function addAsync(id: string, netns: string): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', hostNs(c, H), PLUGIN], {
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: id,
        CNI_NETNS: netns,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
      },
    })
    let out = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.on('close', (status) => resolve({ status: status ?? -1, out }))
    p.stdin.end(JSON.stringify(netconf(c, H)))
  })
}

/** Restarts h1's agent with these fault points (inherited through the fixture's environment). */
async function restartWith(faults: string | undefined, signal: 'TERM' | 'KILL' = 'TERM') {
  t.equal(c.stop(H, signal).status, 0, `agent stopped (${signal})`)
  if (faults) process.env.PLEXUS_TEST_FAULTS = faults
  else delete process.env.PLEXUS_TEST_FAULTS
  const started = c.start(H)
  delete process.env.PLEXUS_TEST_FAULTS
  t.equal(started.status, 0, `agent restarts ${started.stderr}`)
  await waitReady(c, H)
}

const journal = () =>
  existsSync(`${stateDir}/endpoints.json`) ? readFileSync(`${stateDir}/endpoints.json`, 'utf8') : ''

/** Everything one attachment can leave behind, observed from outside the agent. */
function traces(id: string, nsName: string) {
  return {
    eth0: run('ip', ['-n', nsName, 'link', 'show', 'eth0']).status === 0,
    address: /inet /.test(run('ip', ['-n', nsName, '-4', 'addr', 'show', 'eth0']).stdout),
    route: /^default via/m.test(run('ip', ['-n', nsName, 'route']).stdout),
    allocated: allocations(c, H).some((a) => a.containerId === id),
    journal: journal().includes(id),
    record: c.plexctlJson<{ containerId: string }[]>(H, ['endpoints']).some((e) => e.containerId === id),
    hostVeth: hostVeths(c, H).length > 0,
  }
}
const NOTHING = {
  eth0: false,
  address: false,
  route: false,
  allocated: false,
  journal: false,
  record: false,
  hostVeth: false,
}
const COMPLETE = {
  eth0: true,
  address: true,
  route: true,
  allocated: true,
  journal: true,
  record: true,
  hostVeth: true,
}

// Each step with what shows, from outside, that an ADD is held there, and what
// a restarted agent must have made of it.
const STEPS = [
  {
    point: 'add.allocated', // address allocated and veth made, container side not configured
    reached: (id: string) =>
      allocations(c, H).some((a) => a.containerId === id) && hostVeths(c, H).length > 0,
    after: NOTHING,
  },
  {
    point: 'add.configured', // container configured, no journal entry or record yet
    reached: (_id: string, ns: string) =>
      /inet /.test(run('ip', ['-n', ns, '-4', 'addr', 'show', 'eth0']).stdout),
    after: NOTHING,
  },
  {
    point: 'add.written', // journal and record written, answer not yet sent
    reached: (id: string) => journal().includes(id),
    after: COMPLETE,
  },
]
const ROUNDS = 2

t.test(
  'SIGKILL at each step of ADD: code 11, then nothing or all of it; never half-configured',
  async (t) => {
    const seen = { retry: 0, cleanedUp: 0, restored: 0 }
    let n = 0
    for (const step of STEPS) {
      await restartWith(`${step.point}:pause=60000`)
      for (let round = 0; round < ROUNDS; round++) {
        const nsName = `${c.name}-k${n}`
        const netns = containerNs(t, nsName)
        const id = `crash-${process.pid}-${n++}`
        const pending = addAsync(id, netns)
        t.ok(await eventually(() => step.reached(id, nsName), 20_000, 50), `ADD held at ${step.point}`)
        await restartWith(`${step.point}:pause=60000`, 'KILL')
        const r = await pending
        t.equal(r.status, 1, `the runtime got an error: ${r.out}`)
        t.equal((JSON.parse(r.out) as { code: number }).code, 11, 'code 11, try again later')
        seen.retry++
        t.same(traces(id, nsName), step.after, `after a kill at ${step.point}`)
        if (step.after === COMPLETE) {
          seen.restored++
          // the runtime retries after 11 and gets the attachment it already has
          const before = run('ip', ['-n', nsName, '-4', '-o', 'addr', 'show', 'eth0']).stdout
          const again = plugin(c, H, { command: 'ADD', containerId: id, netns }, netconf(c, H))
          t.equal(again.status, 0, `repeated ADD succeeds ${again.raw}`)
          const ips = (again.out as { ips: { address: string }[] }).ips
          t.ok(before.includes(` ${ips[0]?.address} `), `with the address it already has: ${ips[0]?.address}`)
        } else seen.cleanedUp++
        const del = plugin(c, H, { command: 'DEL', containerId: id, netns }, netconf(c, H))
        t.equal(del.status, 0, 'DEL afterwards succeeds')
      }
    }
    t.same(
      seen,
      { retry: 3 * ROUNDS, cleanedUp: 2 * ROUNDS, restored: ROUNDS },
      'every kill landed where it was aimed',
    )
    t.same(hostVeths(c, H), [], 'no veth left')
    t.same(allocations(c, H), [], 'no address left')
  },
)

t.test('a failed journal or store write during ADD leaves no endpoint anywhere', async (t) => {
  for (const point of ['add.journal', 'add.store']) {
    await restartWith(`${point}:fail`)
    const nsName = `${c.name}-f${point.slice(4)}`
    const netns = containerNs(t, nsName)
    const id = `fail-${process.pid}-${point}`
    const r = plugin(c, H, { command: 'ADD', containerId: id, netns }, netconf(c, H))
    t.not(r.status, 0, `ADD fails when ${point} fails: ${r.raw}`)
    t.same(traces(id, nsName), NOTHING, `nothing left after a failed ${point}`)
  }
  await restartWith(undefined)
})
