import type { AllocExecBody, AllocExecReply, AllocLine } from '../../api/contract/jobs.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

const enc = encodeURIComponent
/** plexctl exec: how long a command may run unless --timeout says */
const DEFAULT_TIMEOUT_S = 60

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

  program
    .command('exec')
    .description(
      "a command in a running task's namespaces, root, user and cgroups (this host's allocations; not interactive: its output is printed once it ends, and plexctl exits with its status)",
    )
    .argument('<alloc>')
    .argument('<command...>', 'after --: the command and its arguments')
    .option('--task <name>', 'the task (a group of one task needs none)')
    .option('--timeout <seconds>', `kill it after this long (default ${DEFAULT_TIMEOUT_S}, at most 3600)`)
    .action(async (alloc: string, command: string[], o: { task?: string; timeout?: string }) => {
      if (o.timeout !== undefined && !/^\d+$/.test(o.timeout))
        throw new Error(`--timeout wants a number of seconds, got "${o.timeout}"`)
      const timeoutSeconds = Number(o.timeout ?? DEFAULT_TIMEOUT_S)
      const body: AllocExecBody = { command, timeoutSeconds, ...(o.task ? { task: o.task } : {}) }
      // the answer comes when the command ends: wait a little past its own timeout
      const r = await ctx.client().call<AllocExecReply>('POST', `/v1/allocs/${enc(alloc)}/exec`, body, {
        timeoutMs: (timeoutSeconds + 10) * 1000,
      })
      if (ctx.format() === 'json') ctx.print(json(r))
      else {
        ctx.print(r.stdout)
        process.stderr.write(r.stderr)
      }
      if (r.timedOut) process.stderr.write(`plexctl exec: killed after the ${timeoutSeconds} s timeout\n`)
      if (r.truncated)
        process.stderr.write('plexctl exec: output truncated (each stream keeps its first MiB)\n')
      process.exitCode = r.exitCode
    })
}
