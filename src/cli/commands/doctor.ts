import type { DoctorReply } from '../../api/contract/diag.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

export const registerDoctor: RegisterCommand = (program, ctx) => {
  program
    .command('doctor')
    .description(
      'check a host for the usual causes of trouble: forwarding, rp_filter, foreign firewall rules, MTU, lease, DNS',
    )
    .option('--host <name>', 'the host to check (default: this one), asked over the cluster')
    .action(async (o: { host?: string }) => {
      const q = o.host ? `?host=${encodeURIComponent(o.host)}` : ''
      const r = await ctx.client().call<DoctorReply>('GET', `/v1/doctor${q}`)
      // a failed check is an answer, not an error, but scripts want to know: exit 1 like `systemctl is-active`
      if (r.status === 'fail') process.exitCode = 1
      if (ctx.format() === 'json') return ctx.print(json(r))
      ctx.print(`host ${r.host}: ${r.status}\n\n`)
      ctx.print(
        table(
          ['check', 'status', 'evidence'],
          r.findings.map((f) => [f.check, f.status.toUpperCase(), f.evidence]),
        ),
      )
      const fixes = r.findings.filter((f) => f.fix && f.status !== 'ok')
      if (fixes.length) {
        ctx.print('\nfixes:\n')
        for (const f of fixes) ctx.print(`  ${f.check}: ${f.fix}\n`)
      }
    })
}
