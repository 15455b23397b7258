// Pure: a trace's destination given as a DNS name. The source container's
// resolver is what Plexus' CNI result configured (nameserver: its host's
// bridge gateway, search list and ndots from src/endpoints/model.ts), so
// the names it tries, in order, are computed here as glibc's resolver would;
// a service that resolves to nothing is explained from the catalog.
import { DNS_OPTIONS, DNS_SEARCH } from '../../endpoints/model.js'
import type { ServiceEntry } from '../../services/catalog.js'

/** RFC 1123 host name, with an optional trailing dot */
const NAME =
  /^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i

export const isDnsName = (text: string) => NAME.test(text) && !/^[\d.]+$/.test(text)

const NDOTS = Number(/^ndots:(\d+)$/.exec(DNS_OPTIONS.find((o) => o.startsWith('ndots:')) ?? '')?.[1] ?? 1)

/**
 * The names a resolver with Plexus' search list asks, in order (resolv.conf(5)): a name ending
 * in a dot is asked as is; one with at least ndots dots is asked as is first, then with each
 * search domain; one with fewer, with each search domain first.
 */
export function searchCandidates(
  name: string,
  search: readonly string[] = DNS_SEARCH,
  ndots = NDOTS,
): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)]
  const expanded = search.map((d) => `${name}.${d}`)
  const dots = name.split('.').length - 1
  return dots >= ndots ? [name, ...expanded] : [...expanded, name]
}

/** the service a candidate name asks for (`<svc>.svc.<zone>` or `<tag>.<svc>.svc.<zone>`), if any */
export function serviceOfName(candidate: string, zone: string): string | undefined {
  const m = new RegExp(`^(?:[^.]+\\.)?([^.]+)\\.svc\\.${zone.replaceAll('.', '\\.')}$`, 'i').exec(candidate)
  return m?.[1]?.toLowerCase()
}

/** why a service name answers no address: no member, or none of its members healthy (Consul's critical) */
export function whyNoAddress(entry: ServiceEntry, service: string): { cause: string; fix: string } {
  if (entry.members.length === 0)
    return {
      cause: `service ${service} has no member`,
      fix: `register an endpoint in ${service} (CNI args.plexus.service, a job's service, or plexctl service register)`,
    }
  const shown = entry.members
    .slice(0, 3)
    .map((m) => `${m.name} on ${m.host}`)
    .join(', ')
  const more = entry.members.length > 3 ? ` and ${entry.members.length - 3} more` : ''
  return {
    cause: `service ${service} has no healthy endpoint: ${entry.members.length} member(s) (${shown}${more}), none passing its checks`,
    fix: `plexctl service show ${service} shows each member and its health; DNS answers a member again once its checks pass`,
  }
}
