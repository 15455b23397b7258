import { readFileSync } from 'node:fs'
import { InvalidArgumentError } from 'commander'
import type { NetworkInfo, NetworkInitReply, RotateKeysReply } from '../../api/contract/network.js'
import type { RegisterCommand } from '../context.js'
import { json, keyValues } from '../output.js'
import { registerNamedNetworks } from './networks.js'

type NetworkConfig = NetworkInitReply['config']

interface InitFlags {
  file?: string
  network?: string
  subnetLen?: number
  subnetMin?: string
  subnetMax?: string
  backend?: string
  vni?: number
  port?: number
  mtu?: number
  directRouting?: boolean
  ipmasq?: boolean
  force?: boolean
}

function int(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('wants a whole number')
  return Number(v)
}

/** flannel net-conf.json from --file, with flags overriding its fields. The agent validates the result. */
function configFrom(f: InitFlags): Record<string, unknown> {
  let base: Record<string, unknown> = {}
  if (f.file) {
    const text = readFileSync(f.file === '-' ? 0 : f.file, 'utf8')
    try {
      base = JSON.parse(text)
    } catch (err) {
      throw new Error(`${f.file}: not JSON (${(err as Error).message})`)
    }
    if (typeof base !== 'object' || base === null || Array.isArray(base))
      throw new Error(`${f.file}: not a JSON object`)
  }
  const pick = <T>(o: Record<string, T | undefined>) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
  const backend = pick({
    Type: f.backend,
    VNI: f.vni,
    Port: f.port,
    MTU: f.mtu,
    DirectRouting: f.directRouting,
  })
  return {
    ...base,
    ...pick({
      Network: f.network,
      SubnetLen: f.subnetLen,
      SubnetMin: f.subnetMin,
      SubnetMax: f.subnetMax,
      IPMasq: f.ipmasq,
    }),
    ...(Object.keys(backend).length ? { Backend: { ...(base.Backend as object), ...backend } } : {}),
  }
}

function show(c: NetworkConfig, extra: [string, unknown][] = []): string {
  return keyValues([
    ['network', c.Network],
    ['subnet length', `/${c.SubnetLen}`],
    ['subnet range', `${c.SubnetMin} - ${c.SubnetMax}`],
    ['backend', c.Backend.Type],
    ...(c.Backend.Type === 'vxlan'
      ? ([
          ['vni', c.Backend.VNI],
          ['port', c.Backend.Port],
          ['direct routing', c.Backend.DirectRouting],
        ] as [string, unknown][])
      : []),
    ['mtu', c.Backend.MTU ?? 'underlay MTU' + (c.Backend.Type === 'vxlan' ? ' - 50' : '')],
    ['ip masquerade', c.IPMasq],
    ...extra,
  ])
}

export const registerNetwork: RegisterCommand = (program, ctx) => {
  const network = program
    .command('network')
    .description('the cluster network config (set once, shared by every host), and named (macvlan) networks')

  network
    .command('init')
    .description(
      "set the cluster network config (flannel's net-conf.json fields); refused if a different one is set, unless --force",
    )
    .option('-f, --file <file>', 'flannel net-conf.json to read (- for stdin); flags override its fields')
    .option('--network <cidr>', 'cluster network (default 10.244.0.0/16)')
    .option('--subnet-len <n>', 'host subnet prefix length (default 24)', int)
    .option('--subnet-min <ip>', 'first host subnet to hand out')
    .option('--subnet-max <ip>', 'last host subnet to hand out')
    .option('--backend <type>', 'vxlan (default), host-gw or wireguard')
    .option('--vni <n>', 'VXLAN network identifier (default 1)', int)
    .option('--port <n>', 'VXLAN UDP port (default 8472)', int)
    .option('--mtu <n>', 'overlay MTU (default: underlay MTU - 50 for vxlan)', int)
    .option('--direct-routing', 'vxlan: route directly to hosts on the same L2 segment')
    .option('--no-ipmasq', 'do not masquerade traffic leaving the cluster network')
    .option('--force', 'replace a different existing config (hosts whose subnet no longer fits move)')
    .action(async (f: InitFlags) => {
      // commander sets ipmasq=true by default for --no-ipmasq; send it only when turned off or given in the file
      const flags = { ...f, ipmasq: f.ipmasq === false ? false : undefined }
      const q = f.force ? '?force=true' : ''
      const res = await ctx.client().call<NetworkInitReply>('PUT', `/v1/network${q}`, configFrom(flags))
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(res.changed ? 'network config set:\n' : 'network config unchanged (already set to this):\n')
      ctx.print(show(res.config))
    })

  network
    .command('show')
    .description('show the cluster network config')
    .action(async () => {
      const info = await ctx.client().call<NetworkInfo>('GET', '/v1/network')
      if (ctx.format() === 'json') return ctx.print(json(info))
      const who: [string, unknown][] = [
        ['set by', info.setBy],
        ['set at', info.setAt],
      ]
      if (!info.config) return ctx.print(keyValues([['problem', info.problem], ...who]))
      ctx.print(
        show(info.config, [
          ...(info.mtu ? ([['overlay mtu here', info.mtu]] as [string, unknown][]) : []),
          ...who,
        ]),
      )
    })

  network
    .command('rotate-keys')
    .description(
      "give every host a new WireGuard key (wireguard backend): each announces its next key, then uses it; `plexctl routes -o json` shows each host's keyGeneration",
    )
    .action(async () => {
      const res = await ctx.client().call<RotateKeysReply>('POST', '/v1/network/rotate-keys')
      if (ctx.format() === 'json') return ctx.print(json(res))
      ctx.print(
        keyValues([
          ['key rotation', `generation ${res.generation} requested`],
          ['requested at', new Date(res.requestedAt).toISOString()],
        ]),
      )
    })

  registerNamedNetworks(network, ctx)
}
