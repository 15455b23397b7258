import type { ExplainReply } from '../../api/contract/explain.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

export const registerExplain: RegisterCommand = (program, ctx) => {
  program
    .command('explain')
    .description(
      'which store records produced a route, neighbour, FDB entry, firewall rule, veth or DNS entry on this host',
    )
    .argument(
      '<subject>',
      'a route destination or gateway, a MAC, a rule tag (plexus:ports/tcp-18080-pre), a veth, a DNS name or address',
    )
    .action(async (subject: string) => {
      const q = new URLSearchParams({ subject })
      const r = await ctx.client().call<ExplainReply>('GET', `/v1/explain?${q}`)
      if (ctx.format() === 'json') return ctx.print(json(r))
      if (!r.explanations.length)
        return ctx.print(`nothing on this host comes from records for "${subject}"\n`)
      ctx.print(
        table(
          ['by', 'kind', 'object', 'record', 'index'],
          r.explanations.flatMap((e) =>
            (e.records.length ? e.records : [{ key: '-', index: 0 }]).map((rec, i) =>
              i === 0 ? [e.by, e.kind, e.object, rec.key, rec.index] : ['', '', '', rec.key, rec.index],
            ),
          ),
        ),
      )
    })
}
