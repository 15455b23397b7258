import type { SubnetsReply } from '../../api/contract/subnets.js'
import type { RegisterCommand } from '../context.js'
import { duration, json, table } from '../output.js'

export const registerSubnets: RegisterCommand = (program, ctx) => {
  program
    .command('subnets')
    .description('host-subnet leases across the cluster (and the ones ignored as invalid)')
    .action(async () => {
      const r = await ctx.client().call<SubnetsReply>('GET', '/v1/subnets')
      if (ctx.format() === 'json') return ctx.print(json(r))
      if (!r.network) return ctx.print('no network config is set: run `plexctl network init`\n')
      ctx.print(
        table(
          ['subnet', 'host', 'address', 'backend', 'expires in'],
          r.leases.map((l) => [
            `${l.subnet}${l.self ? ' *' : ''}`,
            l.host,
            l.publicIp,
            l.backend,
            duration(l.expiresInSeconds),
          ]),
        ),
      )
      if (r.self.state !== 'acquired') {
        ctx.print(`\nthis host: ${r.self.state}${r.self.reason ? `: ${r.self.reason}` : ''}\n`)
      }
      if (r.self.withdrawn?.length) {
        ctx.print(`\ncontainers on this host outside its lease (not served; restart them):\n`)
        ctx.print(
          table(
            ['container', 'interface', 'address'],
            r.self.withdrawn.map((w) => [w.containerId.slice(0, 12), w.ifname, w.address]),
          ),
        )
      }
      if (r.invalid.length) {
        ctx.print(`\nignored leases (${r.invalid.length}):\n`)
        ctx.print(
          table(
            ['key', 'subnet', 'problem', 'reason'],
            r.invalid.map((i) => [i.key, i.subnet, i.kind, i.reason]),
          ),
        )
      }
    })
}
