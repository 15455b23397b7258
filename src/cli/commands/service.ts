import { Option } from 'commander'
import type { Registered, ServiceDetail, ServiceSummary } from '../../api/contract/services.js'
import type { RegisterCommand } from '../context.js'
import { collect, json, keyValues, parseDuration, table } from '../output.js'

type Port = ServiceSummary['ports'][number]

/** "http:80/tcp", "80", "dns:53/udp" → port spec */
export function parsePort(s: string): Port {
  const m = /^(?:([a-z0-9-]+):)?(\d{1,5})(?:\/(tcp|udp))?$/.exec(s)
  if (!m) throw new Error(`--port "${s}": use [name:]number[/tcp|udp], e.g. http:80/tcp`)
  const p: Port = { port: Number(m[2]), protocol: (m[3] as Port['protocol'] | undefined) ?? 'tcp' }
  if (m[1]) p.name = m[1]
  return p
}

/**
 * "tcp:80", "http:8080/healthz=200", "http:http/", "exec:pg_isready -q" → check spec.
 * The check's name is its type unless given as name=spec.
 */
export function parseCheck(s: string, common: { interval?: number; timeout?: number; failures?: number }) {
  const named = /^([a-z0-9-]+)=(.*)$/.exec(s)
  const body = named ? named[2]! : s
  const [type, rest = ''] = [body.slice(0, body.indexOf(':')), body.slice(body.indexOf(':') + 1)]
  const base: Record<string, unknown> = { name: named?.[1] ?? type }
  if (common.interval) base.intervalMs = common.interval
  if (common.timeout) base.timeoutMs = common.timeout
  if (common.failures) base.failures = common.failures
  const portOf = (p: string) => (/^\d+$/.test(p) ? Number(p) : p)
  if (type === 'tcp' && rest) return { ...base, type, port: portOf(rest) }
  if (type === 'http') {
    const m = /^([a-z0-9-]+)(\/[^=]*)?(?:=(\d{3}))?$/.exec(rest)
    if (m)
      return {
        ...base,
        type,
        port: portOf(m[1]!),
        path: m[2] || '/',
        ...(m[3] ? { status: Number(m[3]) } : {}),
      }
  }
  if (type === 'exec' && rest.trim()) return { ...base, type, command: rest.trim().split(/\s+/) }
  throw new Error(`--check "${s}": use tcp:PORT, http:PORT[/path][=STATUS] or exec:COMMAND`)
}

export const registerService: RegisterCommand = (program, ctx) => {
  const service = program.command('service').description('define services and register endpoints in them')

  service
    .command('register')
    .description('define (or update) a service; with --endpoint also register a container of this host in it')
    .argument('<name>', 'service name (a DNS label)')
    .option('--tag <tag>', 'tag (repeatable)', collect, [])
    .option('--port <spec>', 'port [name:]number[/tcp|udp] (repeatable)', collect, [])
    .option(
      '--check <spec>',
      'health check: tcp:PORT | http:PORT[/path][=STATUS] | exec:CMD (repeatable)',
      collect,
      [],
    )
    .option('--interval <d>', 'check interval (e.g. 5s)')
    .option('--timeout <d>', 'check timeout (e.g. 2s)')
    .option('--failures <n>', 'failures before unhealthy')
    .option('--endpoint <id>', 'container id or name on this host to register in the service')
    .option('--ifname <name>', 'interface of the endpoint (default eth0)')
    .addOption(
      new Option('--ttl <d>', 'registration lapses unless refreshed within this time (with --endpoint)'),
    )
    .action(async (name: string, o: Record<string, string | string[] | undefined>) => {
      const common = {
        interval: o.interval ? parseDuration(o.interval as string) : undefined,
        timeout: o.timeout ? parseDuration(o.timeout as string) : undefined,
        failures: o.failures ? Number(o.failures) : undefined,
      }
      const spec = {
        tags: o.tag as string[],
        ports: (o.port as string[]).map(parsePort),
        checks: (o.check as string[]).map((c) => parseCheck(c, common)),
      }
      const c = ctx.client()
      if (!o.endpoint) {
        const s = await c.call<ServiceSummary>('PUT', `/v1/services/${encodeURIComponent(name)}`, spec)
        return ctx.print(ctx.format() === 'json' ? json(s) : `service ${s.name} defined\n`)
      }
      const body: Record<string, unknown> = { service: name, ...spec }
      if (o.ifname) body.ifname = o.ifname
      if (o.ttl) body.ttlSeconds = Math.max(1, Math.round(parseDuration(o.ttl as string) / 1000))
      const r = await c.call<Registered>(
        'PUT',
        `/v1/endpoints/${encodeURIComponent(o.endpoint as string)}/register`,
        body,
      )
      ctx.print(
        ctx.format() === 'json'
          ? json(r)
          : `registered ${o.endpoint} in ${name}${r.expiresAt ? ` until ${r.expiresAt}` : ''}\n`,
      )
    })

  service
    .command('deregister')
    .description('remove a service definition, or with --endpoint an endpoint registration')
    .argument('<name>', 'service name')
    .option('--endpoint <id>', 'container id or name on this host')
    .option('--ifname <name>', 'interface of the endpoint')
    .action(async (name: string, o: { endpoint?: string; ifname?: string }) => {
      const c = ctx.client()
      if (o.endpoint) {
        const q = new URLSearchParams({ service: name, ...(o.ifname ? { ifname: o.ifname } : {}) })
        await c.call('DELETE', `/v1/endpoints/${encodeURIComponent(o.endpoint)}/register?${q}`)
        return ctx.print(`deregistered ${o.endpoint} from ${name}\n`)
      }
      await c.call('DELETE', `/v1/services/${encodeURIComponent(name)}`)
      ctx.print(`service ${name} removed\n`)
    })

  service
    .command('ls')
    .description('list services with healthy/total endpoints')
    .action(async () => {
      const list = await ctx.client().call<ServiceSummary[]>('GET', '/v1/services')
      if (ctx.format() === 'json') return ctx.print(json(list))
      ctx.print(
        table(
          ['name', 'healthy', 'tags', 'ports', 'checks'],
          list.map((s) => [
            s.name,
            `${s.healthy}/${s.total}`,
            s.tags.join(',') || '-',
            s.ports.map((p) => `${p.name ? `${p.name}:` : ''}${p.port}/${p.protocol}`).join(',') || '-',
            (s.checks ?? []).map((c) => c.name).join(',') || '-',
          ]),
        ),
      )
    })

  service
    .command('show')
    .description('one service: definition and every endpoint with its health')
    .argument('<name>', 'service name')
    .action(async (name: string) => {
      const s = await ctx.client().call<ServiceDetail>('GET', `/v1/services/${encodeURIComponent(name)}`)
      if (ctx.format() === 'json') return ctx.print(json(s))
      ctx.print(
        keyValues([
          ['name', s.name],
          ['defined', s.defined],
          ['tags', s.tags.join(',') || '-'],
          [
            'ports',
            s.ports.map((p) => `${p.name ? `${p.name}:` : ''}${p.port}/${p.protocol}`).join(',') || '-',
          ],
          ['healthy', `${s.healthy}/${s.total}`],
        ]),
      )
      ctx.print(
        `\n${table(
          ['endpoint', 'host', 'address', 'tags', 'health', 'via', 'expires'],
          s.endpoints.map((e) => [
            e.name,
            e.host,
            [e.ipv4, e.ipv6].filter(Boolean).join(','),
            e.tags.join(',') || '-',
            `${e.healthy ? 'healthy' : 'unhealthy'}${e.checkStates.length ? ` (${e.checkStates.map((c) => `${c.check} ${c.status}`).join(', ')})` : ''}`,
            e.source,
            e.expiresAt,
          ]),
        )}`,
      )
    })
}
