import type { EndpointsReply } from '../../api/contract/endpoints.js'
import type { RegisterCommand } from '../context.js'
import { duration, json, table } from '../output.js'

/** Age of a record from its creation time, "-" when the time is unreadable. */
export function age(createdAt: string, now = Date.now()): string {
  const t = Date.parse(createdAt)
  return Number.isNaN(t) ? '-' : duration(Math.max(0, (now - t) / 1000))
}

export const registerEndpoints: RegisterCommand = (program, ctx) => {
  program
    .command('endpoints')
    .description('list container endpoints on every host of the cluster')
    .option('--host <name>', 'only endpoints on this host')
    .option('--service <name>', 'only endpoints of this service')
    .action(async (opts: { host?: string; service?: string }) => {
      const { endpoints } = await ctx.client().call<EndpointsReply>('GET', '/v1/endpoints')
      const rows = endpoints
        .filter((e) => (!opts.host || e.host === opts.host) && (!opts.service || e.service === opts.service))
        .sort((a, b) => a.host.localeCompare(b.host) || a.name.localeCompare(b.name))
      if (ctx.format() === 'json') return ctx.print(json(rows))
      ctx.print(
        table(
          ['container', 'name', 'host', 'address', 'interface', 'service', 'age'],
          rows.map((e) => [
            e.containerId.slice(0, 12),
            e.name,
            e.host,
            e.withdrawn ? `${e.ipv4} (withdrawn)` : e.ipv4,
            e.ifname,
            e.service,
            age(e.createdAt),
          ]),
        ),
      )
      const withdrawn = rows.filter((e) => e.withdrawn)
      if (withdrawn.length) {
        ctx.print(
          `\naddresses not served (the host lost or withdrew the subnet; restart these containers):\n`,
        )
        ctx.print(
          table(
            ['container', 'host', 'address', 'why'],
            withdrawn.map((e) => [e.containerId.slice(0, 12), e.host, e.ipv4, e.withdrawn]),
          ),
        )
      }
    })
}
