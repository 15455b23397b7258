// plexusd killed (SIGKILL) while ADDs are in flight: the runtime must get
// either a complete result or error 11, never a half-configured container.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { eventually, run, upCluster } from '../../helpers/fixture.js'
import { allocations, containerNs, hostNs, hostVeths, netconf, PLUGIN, plugin, waitReady } from './plugin.js'

t.setTimeout(600_000)
const c = upCluster(t, { hosts: 1, prefix: 'ck' })
const H = 'h1'
await waitReady(c, H)
const pidFile = `/run/plexus-fixture/${c.name}/${H}/plexusd.pid`

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

t.test('SIGKILL during ADD: a complete result or code 11; never half-configured', async (t) => {
  const seen = { complete: 0, retry: 0, cleanedUp: 0, fullyThere: 0 }
  // how long an undisturbed ADD takes here (most of it is node starting the plugin)
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const netns = containerNs(t, `${c.name}-m${i}`)
    const start = Date.now()
    const r = await addAsync(`measure-${i}`, netns)
    times.push(Date.now() - start)
    t.equal(r.status, 0, 'undisturbed ADD')
    plugin(c, H, { command: 'DEL', containerId: `measure-${i}`, netns }, netconf(c, H))
  }
  const addMs = times.sort((a, b) => a - b)[1] as number
  t.comment(`undisturbed ADD: ${addMs} ms`)
  for (let i = 0; i < 12; i++) {
    const nsName = `${c.name}-k${i}`
    const netns = containerNs(t, nsName)
    const id = `crash-${process.pid}-${i}`
    const pending = addAsync(id, netns)
    // spread the kills from well before to just after the time an ADD takes
    await new Promise((r) => setTimeout(r, addMs * (0.6 + i * 0.06)))
    const pid = Number(readFileSync(pidFile, 'utf8'))
    process.kill(pid, 'SIGKILL')
    const r = await pending
    // the fixture counts a zombie as running: wait until it is reaped
    await eventually(() => !existsSync(`/proc/${pid}`), 10_000)
    const started = c.start(H)
    t.equal(started.status, 0, `agent restarts ${started.stderr}`)
    await waitReady(c, H)
    const hasEth0 = run('ip', ['-n', nsName, 'link', 'show', 'eth0']).status === 0
    const allocated = allocations(c, H).some((a) => a.containerId === id)
    if (r.status === 0) {
      seen.complete++
      const res = JSON.parse(r.out) as { ips: { address: string }[] }
      t.equal(res.ips.length, 1, 'complete result')
      t.ok(hasEth0 && allocated, 'and the container has it')
    } else {
      const code = (JSON.parse(r.out) as { code: number }).code
      t.equal(code, 11, `failed ADD says "try again later": ${r.out}`)
      seen.retry++
      if (hasEth0) {
        // killed after the record was written: complete, and CHECK agrees
        seen.fullyThere++
        t.ok(allocated, 'interface and allocation together')
        t.match(run('ip', ['-n', nsName, '-4', 'addr', 'show', 'eth0']).stdout, /inet /, 'with its address')
        t.match(run('ip', ['-n', nsName, 'route']).stdout, /^default via/m, 'and its route')
      } else {
        seen.cleanedUp++
        t.notOk(allocated, 'nothing left allocated')
      }
    }
    const check = plugin(c, H, { command: 'DEL', containerId: id, netns }, netconf(c, H))
    t.equal(check.status, 0, 'DEL afterwards succeeds')
  }
  t.comment(JSON.stringify(seen))
  t.same(hostVeths(c, H), [], 'no veth left')
  t.same(allocations(c, H), [], 'no address left')
})
