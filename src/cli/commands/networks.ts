import type { Command } from 'commander'
import type {
  NetworkConnectReply,
  NetworkCreateBody,
  NetworkCreateReply,
  NetworkRemoveReply,
  NetworksOverviewReply,
  NetworksReply,
} from '../../api/contract/networks.js'
import type { CliContext, RegisterCommand } from '../context.js'
import { json, keyValues, table } from '../output.js'

// Named networks under `plexctl network` (Docker's `network create/ls/rm`):
// bridge networks (an overlay of their own, a subnet of --cidr per host) and
// macvlan networks whose range of the underlay subnet the hosts split into
// blocks; `connect` lets one bridge network reach another. The agent
// validates everything and names every problem.

interface CreateFlags {
  driver?: string
  cidr?: string
  subnetLen?: string
  backend?: string
  vni?: string
  internal?: boolean
  parent?: string
  subnet?: string
  range?: string
  gateway?: string
  blockLen?: string
  mtu?: string
}

/** sent as typed; a bad number is the agent's to name with the other problems */
const num = (v: string | undefined) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v)

function body(name: string, f: CreateFlags): NetworkCreateBody {
  const blockLen = num(f.blockLen)
  return Object.fromEntries(
    Object.entries({
      name,
      // --cidr makes a bridge network unless another driver is named
      driver: f.driver ?? (f.cidr !== undefined ? 'bridge' : 'macvlan'),
      cidr: f.cidr,
      subnetLen: num(f.subnetLen),
      backend: f.backend,
      vni: num(f.vni),
      internal: f.internal,
      parent: f.parent,
      subnet: f.subnet,
      range: f.range,
      gateway: f.gateway,
      blockLen,
      mtu: num(f.mtu),
    }).filter(([, v]) => v !== undefined),
  ) as NetworkCreateBody
}

export function registerNamedNetworks(network: Command, ctx: CliContext): void {
  network
    .command('create <name>')
    .description(
      'create a bridge network (--cidr: an overlay of its own, isolated from the others) or a macvlan network (--subnet/--range)',
    )
    .option('--driver <driver>', 'bridge (default with --cidr) or macvlan')
    .option('--cidr <cidr>', 'bridge: the network, cut into one subnet per host')
    .option('--subnet-len <n>', 'bridge: prefix length of each host subnet (default 24)')
    .option(
      '--backend <type>',
      "bridge: vxlan (default) or wireguard (encrypted: each host's one WireGuard device carries it)",
    )
    .option(
      '--vni <n>',
      "bridge: VXLAN network identifier (default: the lowest free one above the cluster's)",
    )
    .option('--internal', 'bridge: no masquerade and no way out of the network')
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
    .option('--mtu <n>', "macvlan: the containers' MTU (default: the parent interface's)")
    .action(async (name: string, f: CreateFlags) => {
      const res = await ctx.client().call<NetworkCreateReply>('POST', '/v1/networks', body(name, f))
      if (ctx.format() === 'json') return ctx.print(json(res))
      const n = res.network
      ctx.print(res.changed ? `network ${n.name} created:\n` : `network ${n.name} unchanged (already so):\n`)
      ctx.print(
        keyValues(
          n.driver === 'bridge'
            ? [
                ['driver', n.driver],
                ['cidr', n.cidr],
                ['host subnets', `/${n.subnetLen}`],
                ['backend', n.backend],
                ['vni', n.vni],
                ['internal', n.internal],
              ]
            : [
                ['driver', n.driver],
                ['parent', n.parent ?? 'underlay interface'],
                ['subnet', n.subnet],
                ['range', n.range],
                ['gateway', n.gateway],
                ['block', `/${n.blockLen}`],
                ['mtu', n.mtu ?? "the parent interface's"],
              ],
        ),
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
          ['name', 'driver', 'addresses', 'details', 'blocks', 'here'],
          res.networks.map(({ network: n, ...r }) => [
            n.name,
            n.driver,
            n.driver === 'bridge' ? n.cidr : n.range,
            n.driver === 'bridge'
              ? `${n.backend === 'wireguard' ? 'wireguard' : `vni ${n.vni}`}${n.internal ? ', internal' : ''}`
              : `parent ${n.parent ?? '(underlay)'}, subnet ${n.subnet}, gateway ${n.gateway}`,
            r.blocks.map((b) => `${b.host} ${b.subnet}`).join(', ') || '-',
            r.self ? `${r.self.state}${r.self.subnet ? ` ${r.self.subnet}` : ''}` : '-',
          ]),
        ),
      )
    })

  network
    .command('rm <name>')
    .description(
      'delete a named network: every host gives its block up and removes its devices; refused while containers are attached',
    )
    .option('--force', 'remove it with containers attached (their addresses are no longer reserved)')
    .action(async (name: string, f: { force?: boolean }) => {
      const q = f.force ? '?force=true' : ''
      const res = await ctx
        .client()
        .call<NetworkRemoveReply>('DELETE', `/v1/networks/${encodeURIComponent(name)}${q}`)
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(`network ${res.removed} removed\n`)
    })

  network
    .command('connect <from> <to>')
    .description('let containers of bridge network <from> (or "plexus") open connections to those of <to>')
    .option('--port <port[/proto]>', 'only this port (protocol tcp unless /udp); repeat connect to add ports')
    .action(async (from: string, to: string, f: { port?: string }) => {
      const [port, protocol] = (f.port ?? '').split('/')
      const res = await ctx
        .client()
        .call<NetworkConnectReply>('POST', `/v1/networks/${encodeURIComponent(from)}/connect`, {
          to,
          ...(f.port !== undefined ? { port: num(port) } : {}),
          ...(protocol !== undefined ? { protocol } : {}),
        })
      if (ctx.format() === 'json') return ctx.print(json(res))
      const ports = res.link.ports.map((p) => `${p.port}/${p.protocol}`).join(', ') || 'every port'
      ctx.print(
        `${res.link.from} may connect to ${res.link.to} on ${ports}${res.changed ? '' : ' (unchanged)'}\n`,
      )
    })

  network
    .command('disconnect <from> <to>')
    .description('remove what `network connect <from> <to>` allowed')
    .action(async (from: string, to: string) => {
      await ctx
        .client()
        .call('DELETE', `/v1/networks/${encodeURIComponent(from)}/connect/${encodeURIComponent(to)}`)
      if (ctx.format() === 'json') return ctx.print(json({ disconnected: { from, to } }))
      ctx.print(`${from} no longer connects to ${to}\n`)
    })
}

/** `plexctl networks`: every network, the cluster's first, with each host's subnet and the containers on it */
export const registerNetworks: RegisterCommand = (program, ctx) => {
  program
    .command('networks')
    .description(
      "every network (cluster, bridge, macvlan): backend, each host's subnet, the containers attached",
    )
    .action(async () => {
      const res = await ctx.client().call<NetworksOverviewReply>('GET', '/v1/networks/overview')
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        res.networks
          .map((n) => {
            const head = keyValues([
              ['network', n.name],
              ['driver', n.driver],
              ['backend', n.backend],
              [n.driver === 'macvlan' ? 'range' : 'cidr', n.cidr],
              ...(n.subnet ? ([['subnet', `${n.subnet} gateway ${n.gateway}`]] as [string, unknown][]) : []),
              ['hosts', n.hosts.map((h) => `${h.host} ${h.subnet}`).join(', ') || '-'],
            ])
            const members = n.members.length
              ? table(
                  ['container', 'host', 'interface', 'address', 'mac'],
                  n.members.map((m) => [
                    m.containerId.slice(0, 12),
                    m.host,
                    m.ifname,
                    m.address,
                    m.mac ?? '-',
                  ]),
                )
              : 'no containers\n'
            return head + members
          })
          .join('\n'),
      )
    })
}
