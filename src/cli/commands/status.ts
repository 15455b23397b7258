import type { RegisterCommand } from '../context.js'
import { duration, json, keyValues } from '../output.js'

interface Status {
  name: string
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  counters: Record<string, number>
  [k: string]: unknown
}

export const registerStatus: RegisterCommand = (program, ctx) => {
  program
    .command('status')
    .description('show this host agent: name, version, uptime, counters')
    .action(async () => {
      const s = await ctx.client().call<Status>('GET', '/v1/status')
      if (ctx.format() === 'json') return ctx.print(json(s))
      const pairs: [string, unknown][] = [
        ['name', s.name],
        ['version', s.version],
        ['pid', s.pid],
        ['uptime', duration(s.uptimeSeconds)],
      ]
      for (const [k, v] of Object.entries(s)) {
        if (!['name', 'version', 'pid', 'startedAt', 'uptimeSeconds', 'counters'].includes(k))
          pairs.push([k, v])
      }
      for (const [k, v] of Object.entries(s.counters)) pairs.push([`counter ${k}`, v])
      ctx.print(keyValues(pairs))
    })
}
