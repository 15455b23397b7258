import type { DnsAnswer } from '../../api/contract/dns.js'
import type { RegisterCommand } from '../context.js'
import { json, keyValues, table } from '../output.js'

function rdata(d: unknown): string {
  if (d && typeof d === 'object') {
    const o = d as Record<string, unknown>
    if ('target' in o) return `${o.priority} ${o.weight} ${o.port} ${o.target}`
    if ('mname' in o)
      return `${o.mname} ${o.rname} ${o.serial} ${o.refresh} ${o.retry} ${o.expire} ${o.minimum}`
    return JSON.stringify(d)
  }
  return String(d)
}

export const registerDns: RegisterCommand = (program, ctx) => {
  const dns = program.command('dns').description('the embedded DNS server of this host')
  dns
    .command('query')
    .description("ask this host's DNS server and show the decoded answer")
    .argument('<name>', 'name to look up, e.g. web.svc.plexus.internal')
    .argument('[type]', 'record type (A, AAAA, SRV, PTR, SOA, NS, ANY, ...)', 'A')
    .action(async (name: string, type: string) => {
      const q = new URLSearchParams({ name, type: type.toUpperCase() })
      const a = await ctx.client().call<DnsAnswer>('GET', `/v1/dns/query?${q}`)
      if (ctx.format() === 'json') return ctx.print(json(a))
      ctx.print(`;; ${a.rcode} flags: ${a.flags.join(' ')} from ${a.server} in ${a.rttMs.toFixed(2)} ms\n`)
      for (const [title, list] of [
        ['ANSWER', a.answers],
        ['AUTHORITY', a.authorities],
        ['ADDITIONAL', a.additionals],
      ] as const) {
        if (!list.length) continue
        ctx.print(
          `;; ${title}\n${table(
            ['name', 'ttl', 'type', 'data'],
            list.map((r) => [r.name, r.ttl, r.type, rdata(r.data)]),
          )}`,
        )
      }
    })
  dns
    .command('status')
    .description('listen addresses, upstreams, zone size and counters')
    .action(async () => {
      const s = await ctx.client().call<Record<string, unknown>>('GET', '/v1/dns')
      if (ctx.format() === 'json') return ctx.print(json(s))
      ctx.print(keyValues(Object.entries(s)))
    })
}
