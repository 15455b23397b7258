import type { TrafficReply } from '../../api/contract/traffic.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

/** bytes a second as people read them */
function rate(bps: number): string {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} MB/s`
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kB/s`
  return `${bps.toFixed(bps < 10 ? 2 : 1)} B/s`
}

export const registerTraffic: RegisterCommand = (program, ctx) => {
  program
    .command('traffic')
    .description('measured bytes between services (conntrack), as the scheduler places by them')
    .action(async () => {
      const r = await ctx.client().call<TrafficReply>('GET', '/v1/traffic')
      if (ctx.format() === 'json') return ctx.print(json(r))
      if (!r.pairs.length) return ctx.print('no traffic between services measured yet\n')
      ctx.print(
        table(
          ['from', 'to', 'rate', 'counted on'],
          r.pairs.map((p) => [p.from, p.to, rate(p.bytesPerSec), p.hosts.join(',')]),
        ),
      )
    })
}
