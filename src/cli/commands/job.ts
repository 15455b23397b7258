import { readFile } from 'node:fs/promises'
import type {
  JobDetail,
  JobHistoryReply,
  JobLine,
  JobPlanReply,
  JobRebalanceReply,
  JobStopReply,
  JobSubmitReply,
} from '../../api/contract/jobs.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

const enc = encodeURIComponent

export const registerJob: RegisterCommand = (program, ctx) => {
  const job = program.command('job').description('run, plan, inspect and stop jobs (docs/jobs.md)')

  job
    .command('run')
    .description('submit a job spec (YAML or JSON); a changed spec is a new version')
    .argument('<file>')
    .action(async (file: string) => {
      const text = await readFile(file, 'utf8')
      const res = await ctx.client().call<JobSubmitReply>('PUT', '/v1/jobs', { text })
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(`job ${res.name} version ${res.version} submitted\n`)
    })

  job
    .command('plan')
    .description('where a spec would be placed and why each host was filtered or how it scored; runs nothing')
    .argument('<file>')
    .action(async (file: string) => {
      const text = await readFile(file, 'utf8')
      const res = await ctx.client().call<JobPlanReply>('POST', '/v1/jobs/plan', { text })
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        table(
          ['group', 'slot', 'host'],
          res.place.map((p) => [p.group, p.slot, p.hostName]),
        ),
      )
      if (res.explanation) {
        ctx.print(verdicts(res.explanation))
        ctx.print(`\nnetwork cost ${res.explanation.networkCost.toFixed(1)}\n`)
      }
    })

  /** a running job's placement now, placed afresh, and the moves between them */
  const balance = (res: JobRebalanceReply, verb: string) => {
    if (ctx.format() === 'json') return ctx.print(json(res))
    ctx.print(
      table(
        ['group', 'slot', 'host', 'allocation'],
        res.running.map((r) => [r.group, r.slot, r.hostName, r.id]),
      ),
    )
    ctx.print(verdicts(res.explanation))
    ctx.print(`\nnetwork cost now ${res.costNow.toFixed(1)}, placed afresh ${res.costAfter.toFixed(1)}\n`)
    if (!res.moves.length) return ctx.print('no move would lower it by 5 % or more\n')
    ctx.print(`\n${verb}:\n`)
    ctx.print(
      table(
        ['group', 'slot', 'from', 'to', 'allocation'],
        res.moves.map((m) => [m.group, m.slot, m.from, m.to, m.id]),
      ),
    )
  }

  job
    .command('explain')
    .description(
      'a running job: where it runs, why each host was filtered or how it scored, its network cost',
    )
    .argument('<name>')
    .action(async (name: string) => {
      const res = await ctx.client().call<JobRebalanceReply>('GET', `/v1/jobs/${enc(name)}/explain`)
      balance(res, 'a rebalance would move')
    })

  job
    .command('rebalance')
    .description('move allocations where that lowers the job network cost (rolling, health-gated)')
    .argument('<name>')
    .option('--dry-run', 'show the network cost now and after, and the moves; change nothing')
    .action(async (name: string, o: { dryRun?: boolean }) => {
      const res = await ctx
        .client()
        .call<JobRebalanceReply>('POST', `/v1/jobs/${enc(name)}/rebalance`, { dryRun: !!o.dryRun })
      balance(res, res.applied ? 'moving (the owner replaces them one by one)' : 'would move')
    })

  job
    .command('ls')
    .description('every job with its owner and how many slots are placed and admitted')
    .action(async () => {
      const list = await ctx.client().call<JobLine[]>('GET', '/v1/jobs')
      if (ctx.format() === 'json') return ctx.print(json(list))
      ctx.print(
        table(
          ['job', 'type', 'version', 'owner', 'wanted', 'placed', 'admitted', 'state'],
          list.map((j) => [
            j.name,
            j.type,
            j.version,
            j.owner ?? '-',
            j.wanted,
            j.placed,
            j.admitted,
            j.stopped ? 'stopped' : 'running',
          ]),
        ),
      )
    })

  job
    .command('status')
    .description("a job's allocations: where each runs and its host's verdict")
    .argument('<name>')
    .action(async (name: string) => {
      const res = await ctx.client().call<JobDetail>('GET', `/v1/jobs/${enc(name)}`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(`owner: ${res.owner?.name ?? '-'}\n`)
      ctx.print(
        table(
          ['allocation', 'group', 'slot', 'host', 'version', 'status'],
          res.allocations.map((a) => [
            a.id,
            a.group,
            a.slot.length > 12 ? a.slot.slice(0, 12) : a.slot,
            a.hostName,
            a.jobVersion,
            a.reason ? `${a.status}: ${a.reason}` : a.status,
          ]),
        ),
      )
    })

  job
    .command('history')
    .description("a job's versions, newest first (the job record keeps the last 10); -o json has each spec")
    .argument('<name>')
    .action(async (name: string) => {
      const res = await ctx.client().call<JobHistoryReply>('GET', `/v1/jobs/${enc(name)}/history`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        table(
          ['version', 'submitted', ''],
          res.map((v) => [v.version, v.submittedAt, v.current ? 'current' : '']),
        ),
      )
    })

  job
    .command('stop')
    .description('stop a job: its allocations are removed (--purge also forgets the job)')
    .argument('<name>')
    .option('--purge', 'delete the job record too')
    .action(async (name: string, o: { purge?: boolean }) => {
      const res = await ctx
        .client()
        .call<JobStopReply>('DELETE', `/v1/jobs/${enc(name)}${o.purge ? '?purge' : ''}`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(`job ${name} stopped\n`)
    })
}

/** per group, every host's verdict for its first slot: the filter that removed it, or its scores */
function verdicts(plan: JobRebalanceReply['explanation']): string {
  let out = ''
  for (const f of plan.failures) out += `not placed: ${f.group}[${f.index}]: ${f.reason}\n`
  for (const g of plan.groups) {
    out += `\ngroup ${g.group}: ${g.placed}/${g.wanted} placed\n`
    out += table(
      ['host', 'verdict', 'score', 'network ms'],
      g.hosts.map((h) => [
        h.name,
        h.filter ? `${h.filter}: ${h.reason}` : 'feasible',
        h.scores ? h.scores.total.toFixed(3) : '',
        h.scores?.networkCostMs !== undefined ? h.scores.networkCostMs.toFixed(1) : '',
      ]),
    )
  }
  return out
}
