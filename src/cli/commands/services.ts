import type { ServiceSummary } from '../../api/contract/services.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

export const registerServices: RegisterCommand = (program, ctx) => {
  program
    .command('services')
    .description('each service with healthy/total endpoints per host')
    .action(async () => {
      const list = await ctx.client().call<ServiceSummary[]>('GET', '/v1/services')
      if (ctx.format() === 'json') return ctx.print(json(list))
      const rows = list.flatMap((s) =>
        s.hosts.length
          ? s.hosts.map((h, i) => [
              i === 0 ? s.name : '',
              h.host,
              `${h.healthy}/${h.total}`,
              i === 0 ? `${s.healthy}/${s.total}` : '',
            ])
          : [[s.name, '-', '0/0', '0/0']],
      )
      ctx.print(table(['service', 'host', 'healthy', 'all hosts'], rows))
    })
}
