import type { RegisterCommand } from '../context.js'
import { duration, json, keyValues } from '../output.js'

interface Status {
  name: string
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  memory: { rssBytes: number; heapUsedBytes: number; externalBytes: number }
  counters: Record<string, number>
  [k: string]: unknown
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`

export const registerStatus: RegisterCommand = (program, ctx) => {
  program
    .command('status')
    .description('show this host agent: name, version, uptime, memory, counters')
    .action(async () => {
      const s = await ctx.client().call<Status>('GET', '/v1/status')
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
        if (!['name', 'version', 'pid', 'startedAt', 'uptimeSeconds', 'memory', 'counters'].includes(k))
          pairs.push([k, v])
      }
      for (const [k, v] of Object.entries(s.counters)) pairs.push([`counter ${k}`, v])
      ctx.print(keyValues(pairs))
    })
}
