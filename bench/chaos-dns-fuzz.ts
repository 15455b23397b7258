// bench/chaos's DNS fuzzer, run inside a container's namespace (where the
// host's DNS is the container's resolver): hostile queries (bench/lib/chaos.ts
// fuzzDnsQuery, from the seed given) over UDP, and now and then garbage over
// TCP, at `rate` a second until SIGTERM; then prints how many it sent.
// usage: node chaos-dns-fuzz.js <server> <seed> <rate>
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { seededRng } from '../src/cluster/sim/clock.js'
import { fuzzBytes, fuzzDnsQuery } from './lib/chaos.js'

const [server = '', seed = '1', rate = '20'] = process.argv.slice(2)
const r = seededRng(Number(seed))
const udp = createSocket('udp4')
udp.on('error', () => {})
udp.on('message', () => {})
let sent = 0

const timer = setInterval(
  () => {
    if (r() < 0.05) {
      const sock = connect({ host: server, port: 53 })
      sock.on('error', () => {})
      sock.on('connect', () => sock.end(fuzzBytes(r, 600)))
      sock.setTimeout(2000, () => sock.destroy())
    } else udp.send(fuzzDnsQuery(r), 53, server)
    sent++
  },
  Math.max(1, Math.round(1000 / Number(rate))),
)

process.on('SIGTERM', () => {
  clearInterval(timer)
  process.stdout.write(`${sent}\n`)
  udp.close()
  process.exit(0)
})
