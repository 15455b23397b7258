import type { EndpointDetail, EndpointDetailReply } from '../../api/contract/endpoints.js'
import type { NetworkMember, NetworksOverviewReply } from '../../api/contract/networks.js'
import { PlexusError } from '../../lib/errors.js'
import { ApiError } from '../client.js'
import type { RegisterCommand } from '../context.js'
import { json, keyValues, table } from '../output.js'
import { age } from './endpoints.js'

const list = (xs: string[] | undefined) => (xs?.length ? xs.join(', ') : undefined)

/** the default route's next hop: the one asked for, else what the container has (the bridge) */
function gatewayOf(e: EndpointDetail): string | undefined {
  if (e.gateway) return `${e.gateway} (asked for)`
  return e.live?.container?.routes.find((r) => r.dst === '0.0.0.0/0')?.gateway
}

function describe(e: EndpointDetail): string {
  const pairs: [string, unknown][] = [
    ['container', e.containerId],
    ['name', e.name],
    ['namespace', e.namespace],
    ['host', e.host],
    ['interface', e.ifname],
    ['address', e.ipv4],
    ['mac', e.mac],
    ['gateway', gatewayOf(e)],
    ['extra routes', list(e.routes?.map((r) => `${r.dst} via ${r.gw}`))],
    ['netns', e.netns],
    ['veth', e.hostVeth],
    ['service', e.service],
    ['tags', list(e.tags)],
    ['ports', list(e.ports?.map((p) => `${p.port}/${p.protocol}${p.name ? ` (${p.name})` : ''}`))],
    [
      'published',
      list(
        e.published?.map(
          (p) => `${p.hostIp ? `${p.hostIp}:` : ''}${p.hostPort}->${p.containerPort}/${p.protocol}`,
        ),
      ),
    ],
    ['labels', list(Object.entries(e.labels ?? {}).map(([k, v]) => `${k}=${v}`))],
    ['created', `${e.createdAt} (${age(e.createdAt)} ago)`],
  ]
  const l = e.live
  if (l) {
    if (l.hostVeth) {
      const h = l.hostVeth
      pairs.push([
        'veth state',
        `${h.up ? 'up' : 'down'} mtu ${h.mtu} mac ${h.mac ?? '-'}${h.bridge ? ' on plexus0' : ' NOT on plexus0'}`,
      ])
    }
    if (l.container) {
      const c = l.container
      pairs.push([`${c.ifname} state`, `${c.up ? 'up' : 'down'} mtu ${c.mtu} mac ${c.mac ?? '-'}`])
      pairs.push(['addresses', list(c.addresses)])
      pairs.push(['routes', list(c.routes.map((r) => (r.gateway ? `${r.dst} via ${r.gateway}` : r.dst)))])
    }
    if (l.dns) {
      pairs.push(['dns', list(l.dns.nameservers)])
      pairs.push(['dns search', list(l.dns.search)])
      pairs.push(['dns options', list(l.dns.options)])
    }
    pairs.push(['problems', l.problems.length ? l.problems.join('; ') : 'none'])
  }
  return keyValues(pairs.filter(([, v]) => v !== undefined))
}

/**
 * The container's interfaces on every network: its endpoints' (cluster and bridge networks) and its
 * macvlan ones, which have no endpoint record. `id` is what the endpoint lookup resolved, else a prefix.
 */
function interfacesOf(overview: NetworksOverviewReply, id: string, resolved: string | undefined) {
  const all = overview.networks.flatMap((n) => n.members)
  const mine = all.filter((m) => (resolved ? m.containerId === resolved : m.containerId.startsWith(id)))
  const ids = new Set(mine.map((m) => m.containerId))
  if (ids.size > 1)
    throw new PlexusError(
      'PLX_ENDPOINTS_AMBIGUOUS',
      `"${id}" matches ${ids.size} containers: ${[...ids].map((i) => i.slice(0, 12)).join(', ')}`,
    )
  return mine.sort((a, b) => (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0))
}

const interfaceTable = (ms: NetworkMember[]) =>
  table(
    ['interface', 'network', 'address', 'mac', 'gateway', 'host'],
    ms.map((m) => [m.ifname, m.network, m.address, m.mac, m.gateway, m.host]),
  )

export const registerInspect: RegisterCommand = (program, ctx) => {
  program
    .command('inspect')
    .description(
      'everything known about one container: its interfaces on every network, and per endpoint address, veth, MAC, routes, DNS, ports',
    )
    .argument('<container>', 'container id (or a unique prefix) or endpoint name')
    .action(async (id: string) => {
      const client = ctx.client()
      const [detail, overview] = await Promise.allSettled([
        client.call<EndpointDetailReply>('GET', `/v1/endpoints/${encodeURIComponent(id)}`),
        client.call<NetworksOverviewReply>('GET', '/v1/networks/overview'),
      ])
      if (overview.status === 'rejected') throw overview.reason
      // a container only on macvlan networks has no endpoint record: its member records stand for it
      const notFound =
        detail.status === 'rejected' && detail.reason instanceof ApiError && detail.reason.status === 404
      if (detail.status === 'rejected' && !notFound) throw detail.reason
      const endpoints = detail.status === 'fulfilled' ? detail.value.endpoints : []
      const interfaces = interfacesOf(overview.value, id, endpoints[0]?.containerId)
      if (!interfaces.length && !endpoints.length) throw (detail as PromiseRejectedResult).reason
      if (ctx.format() === 'json')
        return ctx.print(
          json(endpoints.length === 1 ? { ...endpoints[0], interfaces } : { endpoints, interfaces }),
        )
      ctx.print([interfaceTable(interfaces), ...endpoints.map(describe)].join('\n'))
    })
}
