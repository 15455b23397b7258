// Entry point of a DNS worker process (see workers.ts): answers UDP on sockets
// shared by the agent, from the zone table the agent sends on every change.
import '../lib/polyfill.js'
import type { Socket as UdpSocket } from 'node:dgram'
import { CacheStage } from './cache/cache.js'
import { buildChain } from './chain.js'
import { ForwardStage } from './forward/forward.js'
import { answer, emptyStats } from './server.js'
import type { Section } from './wire.js'
import type { FromWorker, ToWorker } from './workers.js'
import type { AnswerTable } from './zone/compile.js'
import { ZoneStage } from './zone/handler.js'

const stats = emptyStats()
let sockets = 0
let zone: ZoneStage | undefined
let chain: ReturnType<typeof buildChain> | undefined

// structured clone turns Buffers into plain Uint8Arrays: give them Buffer's methods back
function revive(t: AnswerTable): AnswerTable {
  const fix = (s: Section): void => {
    s.body = Buffer.from(s.body.buffer, s.body.byteOffset, s.body.byteLength)
  }
  fix(t.nxdomain)
  for (const n of t.names.values()) {
    fix(n.nodata)
    for (const list of n.byType.values()) for (const s of list) fix(s)
  }
  return t
}

process.on('message', (m: ToWorker, handle?: UdpSocket) => {
  if (m.type === 'init') {
    zone = new ZoneStage(revive(m.table))
    const cache = new CacheStage({ size: m.opts.cacheSize, maxTtl: m.opts.cacheMaxTtl })
    const forward = new ForwardStage({
      upstreams: m.opts.upstreams,
      timeoutMs: m.opts.timeoutMs,
      maxInFlight: m.opts.maxInFlight,
    })
    chain = buildChain({ zone, cache, forward })
  } else if (m.type === 'zone' && zone) {
    zone.table = revive(m.table)
  } else if (m.type === 'udp' && handle && chain) {
    const run = chain
    handle.on('message', (msg, rinfo) => {
      stats.udpQueries++
      answer(msg, false, run, stats, (out) => handle.send(out, rinfo.port, rinfo.address))
    })
    handle.on('error', () => stats.errors++)
    sockets++
    process.send?.({ type: 'sockets', count: sockets } satisfies FromWorker)
  }
})

setInterval(() => {
  process.send?.({
    type: 'stats',
    udpQueries: stats.udpQueries,
    malformed: stats.malformed,
  } satisfies FromWorker)
}, 1000).unref()

// the agent going away closes the IPC channel: exit with it
process.on('disconnect', () => process.exit(0))
