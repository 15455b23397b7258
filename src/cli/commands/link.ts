import type { Link, LinkAddReply, LinkEnvReply, LinkRemoveReply } from '../../api/contract/links.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

function splitSpec(spec: string): { target: string; alias: string } {
  const [target = '', alias = target] = spec.split(':')
  return { target, alias }
}

export const registerLink: RegisterCommand = (program, ctx) => {
  const link = program
    .command('link')
    .description('Docker-style links: env vars and hosts entries for a peer')

  link
    .command('env')
    .description(
      'print the variables a link gives (ALIAS_PORT_5432_TCP_ADDR=…), one per line for `env` or --env-file',
    )
    .argument('<container>', 'name of the linking container')
    .requiredOption('--to <target[:alias]>', 'service or container to link to')
    .action(async (container: string, opts: { to: string }) => {
      const q = new URLSearchParams({ container, to: opts.to })
      const { env } = await ctx.client().call<LinkEnvReply>('GET', `/v1/links/env?${q}`)
      if (ctx.format() === 'json') return ctx.print(json(env))
      ctx.print(
        Object.entries(env)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `${k}=${v}\n`)
          .join(''),
      )
    })

  link
    .command('add')
    .description('link a container to a target; with --hosts-file the agent keeps its hosts entry current')
    .argument('<container>')
    .requiredOption('--to <target[:alias]>', 'service or container to link to')
    .option('--hosts-file <path>', "the container's hosts file to maintain")
    .action(async (container: string, opts: { to: string; hostsFile?: string }) => {
      const { target, alias } = splitSpec(opts.to)
      const res = await ctx
        .client()
        .call<LinkAddReply>(
          'PUT',
          `/v1/links/${encodeURIComponent(container)}/${encodeURIComponent(alias)}`,
          { target, ...(opts.hostsFile ? { hostsFile: opts.hostsFile } : {}) },
        )
      if (ctx.format() === 'json') return ctx.print(json(res))
      const r = res.link.resolved
      ctx.print(
        `${container} -> ${alias}: ${r ? `${r.name} ${r.ipv4} on ${r.host}` : 'target not found yet'}\n`,
      )
    })

  link
    .command('rm')
    .description("remove a container's links (one alias, or all)")
    .argument('<container>')
    .option('--alias <alias>')
    .action(async (container: string, opts: { alias?: string }) => {
      const path = `/v1/links/${encodeURIComponent(container)}${opts.alias ? `/${encodeURIComponent(opts.alias)}` : ''}`
      const res = await ctx.client().call<LinkRemoveReply>('DELETE', path)
      ctx.print(ctx.format() === 'json' ? json(res) : `removed ${res.removed}\n`)
    })

  link
    .command('ls')
    .description('links registered on this host and where they point now')
    .action(async () => {
      const links = await ctx.client().call<Link[]>('GET', '/v1/links')
      if (ctx.format() === 'json') return ctx.print(json(links))
      ctx.print(
        table(
          ['container', 'alias', 'target', 'resolved', 'address', 'host'],
          links.map((l) => [
            l.container,
            l.alias,
            l.target,
            l.resolved?.name,
            l.resolved?.ipv4,
            l.resolved?.host,
          ]),
        ),
      )
    })
}
