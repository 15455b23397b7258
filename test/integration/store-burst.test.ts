import http from 'node:http'
import t from 'tap'
import { eventually, upCluster } from '../helpers/fixture.js'
import { kvBurst } from '../helpers/kv-burst.js'

// a multi-host fixture run outlasts tap's 300 s file default on a loaded 2-core machine
t.setTimeout(1_200_000)

// Issue 22: a burst of KV writes on one agent (32 keep-alive writers) killed
// agents through the private-network cipher. Now no agent may die, every
// acknowledged key must reach every host, and a refused write is answered
// with 503 + Retry-After and counted by the agent.

const KEYS = 20_000
const HOSTS = ['h1', 'h2', 'h3']

interface Status {
  pid: number
  metrics: Record<string, number>
  memory: { rssBytes?: number; rss?: number }
}

/** Keys under prefix on one agent, straight from its socket (plexctl would print 20,000 lines). */
function keysOn(socket: string, prefix: string): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: socket, path: `/v1/kv/${prefix}/?keys` }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve(new Set(JSON.parse(body) as string[])))
      })
      .on('error', reject)
  })
}

t.test(
  '20,000 writes as fast as the API takes them: no agent dies, every acknowledged key everywhere',
  async (t) => {
    const c = upCluster(t, { hosts: 3, prefix: 'kvb' })
    const state = JSON.parse(c.cli(['ls', '--name', c.name, '-o', 'json']).stdout) as {
      hosts: { name: string; socket: string; agentPid: number }[]
    }
    const pids = Object.fromEntries(state.hosts.map((h) => [h.name, h.agentPid]))
    const socket = (name: string) => state.hosts.find((h) => h.name === name)?.socket as string

    const burst = await kvBurst(socket('h1'), {
      count: KEYS,
      concurrency: 32,
      prefix: 'burst',
      retryScale: 0.05,
    })
    t.comment(`${burst.acknowledged.length} acknowledged, ${burst.refused} refused (503), in ${burst.ms} ms`)
    t.same(burst.failures, {}, 'every answer was 200 or 503 + Retry-After')
    t.equal(burst.acknowledged.length, KEYS, 'every key acknowledged in the end (refused ones retried)')
    const counted = c.plexctlJson<Status>('h1', ['status']).metrics.plexus_api_kv_writes_throttled_total ?? 0
    t.equal(counted, burst.refused, 'the agent counted exactly the refusals the writers were told')

    for (const h of HOSTS) {
      const held = await eventually(
        async () => {
          const keys = await keysOn(socket(h), 'burst')
          return burst.acknowledged.every((k) => keys.has(k)) ? keys : undefined
        },
        180_000,
        2000,
      )
      t.ok(held, `${h} holds every acknowledged key`)
    }
    for (const h of HOSTS) {
      const s = c.plexctlJson<Status>(h, ['status'])
      t.equal(s.pid, pids[h], `${h}: the same agent process is still running`)
      t.equal(s.metrics.plexus_cluster_stray_errors_total ?? 0, 0, `${h}: no error escaped a connection`)
    }
  },
)
