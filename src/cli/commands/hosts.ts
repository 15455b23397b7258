import { InvalidArgumentError } from 'commander'
import type { DrainReply, HostsReply, LabelsReply } from '../../api/contract/hosts.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

/** k=v sets a label, k- removes it (kubectl style). */
export function parseLabelArgs(args: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const a of args) {
    if (a.endsWith('-') && !a.includes('=')) out[a.slice(0, -1)] = null
    else {
      const i = a.indexOf('=')
      if (i <= 0) throw new InvalidArgumentError(`want key=value or key-, got "${a}"`)
      out[a.slice(0, i)] = a.slice(i + 1)
    }
  }
  return out
}

const ago = (ms: number) => (ms < 1000 ? `${ms}ms ago` : `${(ms / 1000).toFixed(1)}s ago`)

export const registerHosts: RegisterCommand = (program, ctx) => {
  const hosts = program
    .command('hosts')
    .description('cluster members: state, last heard, labels, measured and estimated RTT')
    .action(async () => {
      const { hosts } = await ctx.client().call<HostsReply>('GET', '/v1/hosts')
      if (ctx.format() === 'json') return ctx.print(json(hosts))
      ctx.print(
        table(
          ['name', 'peer id', 'address', 'state', 'last heard', 'rtt measured', 'rtt estimated', 'labels'],
          hosts.map((h) => [
            h.self ? `${h.name} (self)` : h.name,
            h.peerId,
            h.address,
            h.drained ? `${h.state}, drained` : h.state,
            h.self ? '-' : ago(h.silentMs),
            h.measuredRttMs == null ? '-' : `${h.measuredRttMs}ms (${h.measuredBy})`,
            h.rttMs === null ? '-' : `${h.rttMs}ms`,
            Object.entries(h.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          ]),
        ),
      )
    })

  for (const [verb, method, what] of [
    [
      'drain',
      'PUT',
      'no new placements on HOST; its allocations move away, update.maxParallel of a job at a time',
    ],
    ['undrain', 'DELETE', 'HOST takes placements again (what moved away stays where it is)'],
  ] as const)
    hosts
      .command(verb)
      .description(what)
      .argument('<host>')
      .action(async (host: string) => {
        const r = await ctx.client().call<DrainReply>(method, `/v1/hosts/${encodeURIComponent(host)}/drain`)
        ctx.print(ctx.format() === 'json' ? json(r) : `${r.name}: ${r.drained ? 'drained' : 'not drained'}\n`)
      })

  hosts
    .command('label')
    .description('set (k=v) or remove (k-) labels of a host; works from any host')
    .argument('<host>')
    .argument('<labels...>')
    .action(async (host: string, labels: string[]) => {
      const body = { labels: parseLabelArgs(labels) }
      const r = await ctx
        .client()
        .call<LabelsReply>('PUT', `/v1/hosts/${encodeURIComponent(host)}/labels`, body)
      ctx.print(ctx.format() === 'json' ? json(r) : `${r.name}: ${JSON.stringify(r.labels)}\n`)
    })
}
