import type { RegisterCommand } from '../context.js'
import { duration, json, keyValues } from '../output.js'

interface Status {
  name: string
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  memory: { rssBytes: number; heapUsedBytes: number; externalBytes: number }
  /** plexus_ series by their Prometheus key (GET /metrics has them all, with help and types) */
  metrics: Record<string, number>
  [k: string]: unknown
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`

export const registerStatus: RegisterCommand = (program, ctx) => {
  program
    .command('status')
    .description('show this host agent: name, version, uptime, memory, metrics')
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
        if (!['name', 'version', 'pid', 'startedAt', 'uptimeSeconds', 'memory', 'metrics'].includes(k))
          pairs.push([k, v])
      }
      for (const [k, v] of Object.entries(s.metrics)) pairs.push([k, v])
      ctx.print(keyValues(pairs))
    })
}
