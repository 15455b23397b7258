import type { AllocLine } from '../../api/contract/jobs.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

const enc = encodeURIComponent

export const registerAllocs: RegisterCommand = (program, ctx) => {
  program
    .command('allocs')
    .description('every allocation in the cluster: host, status, address, restarts')
    .option('--job <name>', 'only this job')
    .action(async (o: { job?: string }) => {
      const res = await ctx
        .client()
        .call<AllocLine[]>('GET', `/v1/allocs${o.job ? `?job=${enc(o.job)}` : ''}`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        table(
          ['allocation', 'job', 'group', 'version', 'host', 'status', 'address', 'restarts', 'exit'],
          res.map((a) => [
            a.id,
            a.job,
            a.group,
            a.jobVersion,
            a.hostName,
            a.reason ? `${a.status}: ${a.reason}` : a.status,
            a.address ?? '-',
            a.restarts,
            a.exitCode ?? '-',
          ]),
        ),
      )
    })

  program
    .command('logs')
    .description("a task's output (this host's allocations; a group of one task needs no TASK)")
    .argument('<alloc>')
    .argument('[task]')
    .option('-f, --follow', 'keep printing what the task writes')
    .option('--tail <n>', 'only the last N lines')
    .action(async (alloc: string, task: string | undefined, o: { follow?: boolean; tail?: string }) => {
      const q = new URLSearchParams()
      if (task) q.set('task', task)
      if (o.tail !== undefined) {
        if (!/^\d+$/.test(o.tail)) throw new Error(`--tail wants a number of lines, got "${o.tail}"`)
        q.set('tail', o.tail)
      }
      if (o.follow) q.set('follow', 'true')
      const path = `/v1/allocs/${enc(alloc)}/logs${q.size ? `?${q}` : ''}`
      // raw text either way: a log line that happens to be JSON is printed as written
      await ctx.client().stream(path, (c) => ctx.print(c))
    })
}
