import type { PortRow, UnpublishReply } from '../../api/contract/ports.js'
import type { CliContext, RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

/**
 * Splits `[IP:]HOSTPORT[:CTRPORT][/PROTO]` (docker -p syntax). Only the shape
 * is checked here; the agent says what is wrong with the values.
 */
function splitSpec(spec: string): {
  hostIp?: string
  hostPort: number
  containerPort?: number
  protocol: string
} {
  const [ports = '', protocol = 'tcp', ...extra] = spec.split('/')
  const parts = ports.split(':')
  const [hostIp, hostPort, containerPort] = parts.length === 3 ? parts : [undefined, parts[0], parts[1]]
  if (
    extra.length ||
    parts.length > 3 ||
    !hostPort ||
    !/^\d+$/.test(hostPort) ||
    (containerPort !== undefined && !/^\d+$/.test(containerPort))
  )
    throw new Error(`"${spec}" is not [IP:]HOSTPORT:CTRPORT[/tcp|udp]`)
  return {
    ...(hostIp ? { hostIp } : {}),
    hostPort: Number(hostPort),
    ...(containerPort !== undefined ? { containerPort: Number(containerPort) } : {}),
    protocol,
  }
}

function printRows(ctx: CliContext, rows: PortRow[], withHost: boolean): void {
  if (ctx.format() === 'json') {
    ctx.print(json(rows))
    return
  }
  const headers = ['host', 'host address', 'container', 'container port', 'protocol']
  ctx.print(
    table(
      withHost ? headers : headers.slice(1),
      rows.map((r) => {
        const cells = [
          `${r.hostAddress}:${r.hostPort}`,
          r.container,
          `${r.containerIp}:${r.containerPort}`,
          r.protocol,
        ]
        return withHost ? [r.host, ...cells] : cells
      }),
    ),
  )
}

export const registerPort: RegisterCommand = (program, ctx) => {
  const port = program.command('port').description("publish a container's port on this host")

  port
    .command('publish')
    .description('publish CTRPORT of a container of this host on HOSTPORT (0 picks a free one)')
    .argument('<container>', 'container name or id')
    .argument('<spec>', '[IP:]HOSTPORT:CTRPORT[/tcp|udp]')
    .option('--host-ip <ip>', 'only on this host address')
    .action(async (container: string, spec: string, opts: { hostIp?: string }) => {
      const s = splitSpec(spec)
      if (s.containerPort === undefined) throw new Error(`"${spec}": give HOSTPORT:CTRPORT`)
      const hostIp = opts.hostIp ?? s.hostIp
      const row = await ctx.client().call<PortRow>('POST', '/v1/ports', {
        container,
        hostPort: s.hostPort,
        containerPort: s.containerPort,
        protocol: s.protocol,
        ...(hostIp ? { hostIp } : {}),
      })
      if (ctx.format() === 'json') return ctx.print(json(row))
      ctx.print(
        `${row.hostAddress}:${row.hostPort}/${row.protocol} -> ${row.container} ${row.containerIp}:${row.containerPort}\n`,
      )
    })

  port
    .command('unpublish')
    .description("remove a container's published port")
    .argument('<container>', 'container name or id')
    .argument('<spec>', '[IP:]HOSTPORT[:CTRPORT][/tcp|udp]')
    .option('--host-ip <ip>', 'only the mapping on this host address')
    .action(async (container: string, spec: string, opts: { hostIp?: string }) => {
      const s = splitSpec(spec)
      const hostIp = opts.hostIp ?? s.hostIp
      const q = new URLSearchParams({ protocol: s.protocol, ...(hostIp ? { hostIp } : {}) })
      const res = await ctx
        .client()
        .call<UnpublishReply>('DELETE', `/v1/ports/${encodeURIComponent(container)}/${s.hostPort}?${q}`)
      ctx.print(ctx.format() === 'json' ? json(res) : `removed ${res.removed.length}\n`)
    })

  port
    .command('ls')
    .description('ports published on this host')
    .action(async () => {
      printRows(ctx, await ctx.client().call<PortRow[]>('GET', '/v1/ports?local=true'), false)
    })

  program
    .command('ports')
    .description('every published port in the cluster')
    .action(async () => {
      printRows(ctx, await ctx.client().call<PortRow[]>('GET', '/v1/ports'), true)
    })
}
