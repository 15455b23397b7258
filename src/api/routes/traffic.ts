import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { trafficCodec } from '../../store/codecs.js'
import { TRAFFIC_PREFIX } from '../../store/types.js'
import { TrafficReply } from '../contract/traffic.js'
import type { ApiDeps } from '../deps.js'

/** what the /v1/traffic route reads (registered with that prefix) */
export type TrafficComponents = Pick<ApiDeps, 'store'>

/** The measured service-to-service matrix: every host's summary (traffic/<peerId>), summed by pair. */
export const trafficRoutes: FastifyPluginAsyncTypebox<TrafficComponents> = async (app, deps) => {
  app.get('', { schema: { response: { 200: TrafficReply } } }, async () => {
    const pairs = new Map<string, { from: string; to: string; bytesPerSec: number; hosts: string[] }>()
    const hosts: TrafficReply['hosts'] = []
    for (const r of deps.store.list(TRAFFIC_PREFIX)) {
      const v = trafficCodec.valueOf(r)
      if (!v) continue
      hosts.push({ host: v.host, at: new Date(v.at).toISOString(), tauMs: v.tauMs, pairs: v.pairs.length })
      for (const p of v.pairs) {
        const k = `${p.from} ${p.to}`
        const row = pairs.get(k) ?? { from: p.from, to: p.to, bytesPerSec: 0, hosts: [] }
        row.bytesPerSec += p.bytesPerSec
        row.hosts.push(v.host)
        pairs.set(k, row)
      }
    }
    return {
      pairs: [...pairs.values()]
        .map((p) => ({ ...p, bytesPerSec: Math.round(p.bytesPerSec * 1000) / 1000, hosts: p.hosts.sort() }))
        .sort((a, b) => b.bytesPerSec - a.bytesPerSec || (a.from + a.to < b.from + b.to ? -1 : 1)),
      hosts: hosts.sort((a, b) => a.host.localeCompare(b.host)),
    }
  })
}
