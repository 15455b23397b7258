// The dialing side of bench/conn-soak, run inside a fixture host's namespace:
// one libp2p node with the cluster key (a fresh identity, no replication)
// connects to ADDR and hangs up, COUNT times, one after the other. Prints one
// JSON line: how many connections completed, how many failed and why.
import '../src/lib/polyfill.js'
import { readFileSync } from 'node:fs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { pino } from 'pino'
import { Libp2pTransport } from '../src/cluster/libp2p-transport.js'
import { clusterMetrics } from '../src/cluster/metrics.js'
import { parseClusterKey } from '../src/lib/cluster-key.js'
import { Metrics } from '../src/lib/metrics.js'
import { quantile, round } from './lib/report.js'

const [keyFile, addr, countArg] = process.argv.slice(2)
if (!keyFile || !addr) throw new Error('usage: conn-soak-dialer KEYFILE MULTIADDR [COUNT]')
const count = Number(countArg ?? 1)
// libp2p's connection manager resets inbound connections past 5 a second from one address (its
// inboundConnectionThreshold, a guard the agent keeps), so the soak dials at a steady rate below it
const gapMs = 1000 / Number(process.env.CONN_SOAK_RATE ?? 4)
const transport = await Libp2pTransport.create({
  privateKey: await generateKeyPair('Ed25519'),
  psk: parseClusterKey(readFileSync(keyFile, 'utf8'), keyFile),
  listen: [],
  announce: [],
  logger: pino({ level: 'silent' }),
  metrics: clusterMetrics(new Metrics()),
})
await transport.start()
const errors: Record<string, number> = {}
const ms: number[] = []
for (let i = 0; i < count; i++) {
  const t0 = performance.now()
  const next = t0 + gapMs
  try {
    const peer = await transport.dial(addr, 5000)
    ms.push(performance.now() - t0)
    await transport.node.hangUp(peerIdFromString(peer))
  } catch (err) {
    // name and the start of the message: a bare 'Error' says nothing about why a dial failed
    const why = `${(err as Error).name || 'Error'}: ${String((err as Error).message).slice(0, 80)}`
    errors[why] = (errors[why] ?? 0) + 1
  }
  await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())))
  if ((i + 1) % 1000 === 0) process.stderr.write(`  ${i + 1}/${count} connections\n`)
}
await transport.stop()
process.stdout.write(
  `${JSON.stringify({ connected: ms.length, errors, dial_p50_ms: round(quantile(ms, 0.5)), dial_p99_ms: round(quantile(ms, 0.99)) })}\n`,
)
