import type { Command } from 'commander'
import type {
  NetworkCreateBody,
  NetworkCreateReply,
  NetworkRemoveReply,
  NetworksReply,
} from '../../api/contract/networks.js'
import type { CliContext } from '../context.js'
import { json, keyValues, table } from '../output.js'

// Named networks under `plexctl network` (Docker's `network create/ls/rm`):
// macvlan networks whose range of the underlay subnet the hosts split into
// blocks. The agent validates everything and names every problem.

interface CreateFlags {
  driver: string
  parent?: string
  subnet?: string
  range?: string
  gateway?: string
  blockLen?: string
}

function body(name: string, f: CreateFlags): NetworkCreateBody {
  // sent as typed; a bad block length is the agent's to name with the other problems
  const blockLen =
    f.blockLen === undefined ? undefined : /^\d+$/.test(f.blockLen) ? Number(f.blockLen) : f.blockLen
  return Object.fromEntries(
    Object.entries({
      name,
      driver: f.driver,
      parent: f.parent,
      subnet: f.subnet,
      range: f.range,
      gateway: f.gateway,
      blockLen,
    }).filter(([, v]) => v !== undefined),
  ) as NetworkCreateBody
}

export function registerNamedNetworks(network: Command, ctx: CliContext): void {
  network
    .command('create <name>')
    .description(
      'create a macvlan network: containers get addresses of --range, split into blocks between hosts',
    )
    .option('--driver <driver>', 'macvlan', 'macvlan')
    .option(
      '--parent <iface>',
      "host interface the containers' sub-interfaces hang off (default: the underlay interface)",
    )
    .option('--subnet <cidr>', 'the underlay subnet the containers are in')
    .option(
      '--range <cidr>',
      'the part of the subnet handed to containers (outside every host and router address)',
    )
    .option('--gateway <ip>', "the containers' default gateway (default: the subnet's first address)")
    .option('--block-len <n>', 'prefix length of the block each host leases (default 26, 61 containers)')
    .action(async (name: string, f: CreateFlags) => {
      const res = await ctx.client().call<NetworkCreateReply>('POST', '/v1/networks', body(name, f))
      if (ctx.format() === 'json') return ctx.print(json(res))
      const n = res.network
      ctx.print(res.changed ? `network ${n.name} created:\n` : `network ${n.name} unchanged (already so):\n`)
      ctx.print(
        keyValues([
          ['driver', n.driver],
          ['parent', n.parent ?? 'underlay interface'],
          ['subnet', n.subnet],
          ['range', n.range],
          ['gateway', n.gateway],
          ['block', `/${n.blockLen}`],
        ]),
      )
    })

  network
    .command('ls')
    .description('named networks and the block of the range each host holds')
    .action(async () => {
      const res = await ctx.client().call<NetworksReply>('GET', '/v1/networks')
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        table(
          ['name', 'driver', 'parent', 'subnet', 'range', 'gateway', 'blocks', 'here'],
          res.networks.map((r) => [
            r.network.name,
            r.network.driver,
            r.network.parent ?? '(underlay)',
            r.network.subnet,
            r.network.range,
            r.network.gateway,
            r.blocks.map((b) => `${b.host} ${b.subnet}`).join(', ') || '-',
            r.self ? `${r.self.state}${r.self.subnet ? ` ${r.self.subnet}` : ''}` : '-',
          ]),
        ),
      )
    })

  network
    .command('rm <name>')
    .description('delete a named network: every host gives its block up and removes its devices')
    .action(async (name: string) => {
      const res = await ctx
        .client()
        .call<NetworkRemoveReply>('DELETE', `/v1/networks/${encodeURIComponent(name)}`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(`network ${res.removed} removed\n`)
    })
}
