// Pure: which store records each name of the zone comes from (explain,
// src/lib/explain.ts), from the same catalog buildZone reads. A node's
// address from its heartbeat, a container's name and PTR from its endpoint
// record, a service's addresses and SRV records from its members' endpoint
// records plus the service definition and API registrations that made them
// members.
import type { Origin } from '../../lib/explain.js'
import type { Catalog, Member } from '../../services/catalog.js'
import { ENDPOINT_PREFIX, NODE_PREFIX, REGISTRATION_PREFIX, SERVICE_PREFIX } from '../../store/types.js'
import { reverseName, toLabel } from './records.js'

function memberKeys(m: Member, defined: boolean): string[] {
  return [
    m.endpointKey,
    ...(defined ? [`${SERVICE_PREFIX}${m.service}`] : []),
    ...(m.source === 'api'
      ? [`${REGISTRATION_PREFIX}${m.endpointKey.slice(ENDPOINT_PREFIX.length)}/${m.service}`]
      : []),
  ]
}

export function zoneOrigins(catalog: Catalog, origin: string): Origin[] {
  const out: Origin[] = []
  const address = (name: string, ip: string | undefined, keys: string[]) => {
    if (ip) out.push({ kind: ip.includes(':') ? 'AAAA' : 'A', object: `${name} ${ip}`, keys })
  }
  for (const n of catalog.nodes) {
    const label = toLabel(n.value.name)
    if (label) address(`${label}.node.${origin}`, n.value.address, [`${NODE_PREFIX}${n.peer}`])
  }
  for (const ep of catalog.endpoints) {
    const label = toLabel(ep.value.name)
    if (!label) continue
    const name = `${label}.ctr.${origin}`
    for (const ip of [ep.value.ipv4, ep.value.ipv6]) {
      address(name, ip, [ep.key])
      const rev = ip ? reverseName(ip) : undefined
      if (rev) out.push({ kind: 'PTR', object: `${rev} ${name}`, keys: [ep.key] })
    }
  }
  for (const svc of catalog.services.values()) {
    const base = `${svc.name}.svc.${origin}`
    const defined = svc.definition !== undefined
    for (const m of svc.members.filter((x) => x.healthy)) {
      const keys = memberKeys(m, defined)
      for (const name of [base, ...m.tags.map((tag) => `${tag}.${base}`)]) {
        address(name, m.ipv4, keys)
        address(name, m.ipv6, keys)
      }
      const target = toLabel(m.name)
      for (const p of target ? m.ports : []) {
        for (const owner of [p.port, ...(p.name ? [p.name] : [])])
          out.push({
            kind: 'SRV',
            object: `_${owner}._${p.protocol}.${base} ${p.port} ${target}.ctr.${origin}`,
            keys,
          })
      }
    }
  }
  return out
}
