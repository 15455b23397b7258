import type { TraceReply, TraceRequest } from '../../api/contract/diag.js'
import type { RegisterCommand } from '../context.js'
import { json, table } from '../output.js'

/** DST[:PORT][/tcp|udp|icmp]; the name part is left for the agent to resolve */
export function parseDestination(text: string): Pick<TraceRequest, 'dst' | 'port' | 'proto'> {
  const m = /^([^:/]+)(?::(\d{1,5}))?(?:\/(tcp|udp|icmp))?$/.exec(text)
  if (!m?.[1]) throw new Error(`destination "${text}" is not DST[:PORT][/tcp|udp|icmp]`)
  const port = m[2] === undefined ? undefined : Number(m[2])
  if (port !== undefined && (port < 1 || port > 65535)) throw new Error(`port ${port} is not 1-65535`)
  return {
    dst: m[1],
    ...(port === undefined ? {} : { port }),
    ...(m[3] ? { proto: m[3] as TraceRequest['proto'] & string } : {}),
  }
}

export const registerTrace: RegisterCommand = (program, ctx) => {
  program
    .command('trace')
    .description('the path of a flow hop by hop, from the kernel of each host on it, and what breaks it')
    .argument('<src>', 'container name or id, host name, or cluster address')
    .argument(
      '<dst>',
      'DST[:PORT][/tcp|udp|icmp]: a container, host (HOST:PORT: a published port), address, or a DNS name (a service) resolved as the source container would',
    )
    .option('--probe', 'also send one real packet from the source and show its answer and where it was seen')
    .action(async (src: string, dstText: string, opts: { probe?: boolean }) => {
      const body: TraceRequest = { src, ...parseDestination(dstText), ...(opts.probe ? { probe: true } : {}) }
      const r = await ctx.client().call<TraceReply>('POST', '/v1/trace', body)
      if (!r.diagnosis.ok) process.exitCode = 1
      if (ctx.format() === 'json') return ctx.print(json(r))
      const f = r.flow
      ctx.print(
        `trace ${f.srcName} (${f.src} on ${f.srcHost}) → ${f.dstName} (${f.dst}${f.port ? `:${f.port}` : ''}/${f.proto} on ${f.dstHost}), ${r.durationMs} ms\n\n`,
      )
      ctx.print(
        table(
          ['#', 'host', 'component', 'action', 'kernel object', 'store record'],
          r.hops.map((h, i) => [
            i + 1,
            h.host,
            h.component,
            h.action.toUpperCase(),
            h.object,
            h.record ?? '-',
          ]),
        ),
      )
      ctx.print(
        `\n${r.diagnosis.ok ? 'ok' : r.diagnosis.hop === undefined ? 'broken' : `broken at hop ${r.diagnosis.hop + 1}`}: ${r.diagnosis.line}\n`,
      )
      const p = r.probe
      if (p) {
        ctx.print(
          `\nprobe: ${p.outcome}${p.rttMs === undefined ? '' : ` in ${p.rttMs.toFixed(2)} ms`}: ${p.detail}\n`,
        )
        for (const s of p.seen) ctx.print(`  ${s.seen ? 'seen' : 'not seen'} on ${s.host}: ${s.object}\n`)
      }
    })
}
