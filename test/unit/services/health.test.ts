import { createServer, type Server } from 'node:net'
import { pino } from 'pino'
import t from 'tap'
import { Metrics } from '../../../src/lib/metrics.js'
import { HealthChecker, nextStatus } from '../../../src/services/health.js'
import type { HealthValue } from '../../../src/store/records.js'
import { nsExec, tempNetns } from '../../integration/datapath/tempns.js'
import { newStore } from '../store/helpers.js'

t.test('nextStatus: failures before critical, one success heals', async (t) => {
  let s: ReturnType<typeof nextStatus> = { fails: 0 }
  s = nextStatus(s, false, 3)
  t.same(s, { status: undefined, fails: 1 })
  s = nextStatus(nextStatus(s, false, 3), false, 3)
  t.equal(s.status, 'critical')
  t.same(nextStatus(s, true, 3), { status: 'passing', fails: 0 })
  t.equal(nextStatus({ status: 'passing', fails: 0 }, false, 2).status, 'passing')
})

async function listen(port = 0): Promise<Server> {
  const srv = createServer((s) => s.end())
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()))
  return srv
}

t.test('tcp and exec checks write health transitions of this host', async (t) => {
  const { store, signer } = await newStore({
    now: {
      get t() {
        return Date.now()
      },
    },
  })
  const self = signer.self
  const ctr = tempNetns(t, 'hc')
  nsExec(ctr.name, 'ip', ['link', 'add', 'hcmark0', 'type', 'veth', 'peer', 'name', 'hcmark1'])
  let srv = await listen()
  const port = (srv.address() as { port: number }).port
  t.teardown(() => srv.close())
  await store.put(`endpoints/${self}/c1/eth0`, {
    containerId: 'c1',
    ifname: 'eth0',
    name: 'c1',
    host: 'h1',
    ipv4: '127.0.0.1',
    mac: '02:00:00:00:00:01',
    // exec checks enter this namespace with nsenter: the check below sees a link only it has
    netns: ctr.path,
    hostVeth: 'v',
    labels: {},
    createdAt: new Date().toISOString(),
    service: 'web',
  })
  const fast = { intervalMs: 100, timeoutMs: 80, failures: 2 }
  await store.put('services/web', {
    name: 'web',
    tags: [],
    ports: [{ name: 'http', port, protocol: 'tcp' }],
    checks: [
      { name: 'up', type: 'tcp', port: 'http', ...fast },
      { name: 'sh', type: 'exec', command: ['ip', 'link', 'show', 'hcmark0'], ...fast },
    ],
  })
  const checker = new HealthChecker({
    store,
    peerId: self,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
  })
  await checker.start()
  t.teardown(() => checker.stop())
  const status = (check: string) =>
    (store.get(`health/${self}/c1:eth0:web:${check}`)?.value as unknown as HealthValue | undefined)?.status
  const until = async (check: string, want: string | undefined) => {
    for (let i = 0; i < 60 && status(check) !== want; i++) await new Promise((r) => setTimeout(r, 50))
    return status(check)
  }
  t.same(checker.running, [`health/${self}/c1:eth0:web:sh`, `health/${self}/c1:eth0:web:up`])
  t.equal(await until('up', 'passing'), 'passing')
  t.equal(await until('sh', 'passing'), 'passing', "exec check passes: it ran in the container's namespace")
  nsExec(ctr.name, 'ip', ['link', 'del', 'hcmark0'])
  t.equal(await until('sh', 'critical'), 'critical', 'exec check fails once the link is gone')
  await new Promise<void>((r) => srv.close(() => r()))
  t.equal(await until('up', 'critical'), 'critical', 'port closed')
  srv = await listen(port)
  t.equal(await until('up', 'passing'), 'passing', 'back')
  await store.put('services/web', { name: 'web', tags: [], ports: [{ name: 'http', port, protocol: 'tcp' }] })
  t.equal(await until('up', undefined), undefined, 'results of removed checks are deleted')
  t.same(checker.running, [])
})
