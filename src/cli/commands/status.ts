import type { StatusReply } from '../../api/contract/status.js'
import type { RegisterCommand } from '../context.js'
import { duration, json, keyValues } from '../output.js'

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`

export const registerStatus: RegisterCommand = (program, ctx) => {
  program
    .command('status')
    .description('show this host agent: name, version, uptime, memory, metrics')
    .action(async () => {
      const s = await ctx.client().call<StatusReply>('GET', '/v1/status')
      if (ctx.format() === 'json') return ctx.print(json(s))
      const pairs: [string, unknown][] = [
        ['name', s.name],
        ['version', s.version],
        ['pid', s.pid],
        ['uptime', duration(s.uptimeSeconds)],
        [
          'memory',
          `rss ${mb(s.memory.rssBytes)}, heap ${mb(s.memory.heapUsedBytes)}, external ${mb(s.memory.externalBytes)}`,
        ],
      ]
      for (const [k, v] of Object.entries(s)) {
        if (!['name', 'version', 'pid', 'startedAt', 'uptimeSeconds', 'memory', 'metrics'].includes(k))
          pairs.push([k, v])
      }
      for (const [k, v] of Object.entries(s.metrics)) pairs.push([k, v])
      ctx.print(keyValues(pairs))
    })
}
