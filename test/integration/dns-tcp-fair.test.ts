// DNS over TCP shared fairly (issue 18): one client that opens hundreds of
// connections and drips a byte into each every second holds at most its
// per-client share, each of its connections is closed on the whole-message
// deadline however long it keeps dripping, and another client's TCP query is
// still answered meanwhile. Loopback addresses in a throwaway namespace stand
// for two containers (the limit is per source address).
import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import { promisify } from 'node:util'
import { pino } from 'pino'
import t from 'tap'
import { defaultDnsConfig } from '../../src/dns/config.js'
import { DnsService } from '../../src/dns/service.js'
import { Metrics } from '../../src/lib/metrics.js'
import type { JsonValue } from '../../src/store/types.js'
import { drip } from '../helpers/drip.js'
import { ownNetns } from '../helpers/own-netns.js'
import { endpointValue } from '../helpers/records.js'
import { newStore } from '../unit/store/helpers.js'

await ownNetns(import.meta.url, 'plxdnstcp')

const PORT = 5300
const ATTACKER = '127.0.0.10'
const VICTIM = '127.0.0.20'
const ATTACK_CONNECTIONS = 300
const run = promisify(execFile)

const { store, signer } = await newStore({
  now: {
    get t() {
      return Date.now()
    },
  },
})
await store.put(
  `endpoints/${signer.self}/web1-0123456789ab/eth0`,
  endpointValue('web1', '10.244.1.2') as unknown as JsonValue,
)
// the shipped defaults: the test holds them to the numbers
const defaults = defaultDnsConfig()
const dns = new DnsService({
  metrics: new Metrics(),
  config: {
    dns: { ...defaults, listenGateway: false, listen: ['127.0.0.1'], port: PORT, upstreams: ['127.0.0.1:1'] },
  },
  logger: pino({ level: 'silent' }),
  store,
  peerId: signer.self,
})
await dns.start()
t.teardown(() => dns.stop())

/** a valid query frame for web1.ctr.plexus.internal, length prefix included */
function frame(): Buffer {
  const name = Buffer.from('\x04web1\x03ctr\x06plexus\x08internal\x00', 'latin1')
  const q = Buffer.concat([
    Buffer.from([0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    name,
    Buffer.from([0, 1, 0, 1]),
  ])
  return Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q])
}

t.test('one client dripping into 300 connections cannot take TCP DNS from another', async (t) => {
  const drips = await Promise.all(
    Array.from({ length: ATTACK_CONNECTIONS }, () =>
      drip(() => connect({ port: PORT, host: '127.0.0.1', localAddress: ATTACKER }), frame()),
    ),
  )
  t.teardown(() => {
    for (const d of drips) d.sock.destroy()
  })
  await new Promise((r) => setTimeout(r, 1500))
  const open = drips.filter((d) => d.closedAt === undefined)
  t.ok(
    open.length <= defaults.tcpMaxPerClient,
    `the dripping client holds ${open.length} connections, at most its share of ${defaults.tcpMaxPerClient}`,
  )
  t.ok(open.length > 0, 'its first connections were accepted')

  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(PORT),
    '-b',
    VICTIM,
    '+tcp',
    '+time=2',
    '+tries=1',
    '+short',
    'web1.ctr.plexus.internal',
  ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
  t.equal(stdout.trim(), '10.244.1.2', 'dig +tcp from another client is answered')

  // the drips go on (one byte a second), yet every connection is closed on its deadline
  const limit = defaults.tcpMessageTimeoutMs
  await new Promise((r) => setTimeout(r, limit + 1500))
  const still = open.filter((d) => d.closedAt === undefined)
  t.equal(still.length, 0, 'no dripping connection outlives the whole-message deadline')
  for (const d of open.filter((d) => d.closedAt !== undefined)) {
    const held = (d.closedAt as number) - d.openedAt
    if (held > limit + 1000) t.fail(`a drip connection was held ${held} ms (deadline ${limit} ms)`)
  }
  t.ok(Math.max(...open.map((d) => d.sent)) >= 3, 'the client kept dripping while it was held')
  const stats = dns.status().stats as { tcpRefused: number; tcpTimedOut: number }
  t.ok(
    stats.tcpRefused >= ATTACK_CONNECTIONS - defaults.tcpMaxPerClient,
    `refused counted: ${stats.tcpRefused}`,
  )
  t.ok(stats.tcpTimedOut >= open.length, `deadlines counted: ${stats.tcpTimedOut}`)
})
