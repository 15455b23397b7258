// Docker's legacy links, computed from the store: environment variables and
// hosts entries for a container linked to a service or another container.
// Pure: records in, env/hosts out.
import { basename, normalize } from 'node:path'
import type { EndpointValue, HealthValue, PortSpec, ServiceValue } from '../store/records.js'

export interface LinkSpec {
  /** service name or container name */
  target: string
  /** name the linking container uses; defaults to target */
  alias: string
}

export interface LinkTarget {
  /** container name of the endpoint picked */
  name: string
  ipv4: string
  host: string
  ports: PortSpec[]
}

const ALIAS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/

/** Parses `SVC[:ALIAS]` as `--link` and `--to` take it. */
export function parseLinkSpec(spec: string): LinkSpec {
  const [target = '', alias = target, ...rest] = spec.split(':')
  if (rest.length || !ALIAS_RE.test(target) || !ALIAS_RE.test(alias)) {
    throw new Error(`a link is TARGET[:ALIAS] with names of letters, digits, '.', '_' or '-', got "${spec}"`)
  }
  return { target, alias }
}

export interface EndpointView {
  key: string
  value: EndpointValue
}

/**
 * Picks the endpoint a link points at: a container of that name, else a
 * healthy endpoint of that service (same host first, then by name, so the
 * choice is stable while nothing changes).
 */
export function resolveLinkTarget(
  target: string,
  endpoints: EndpointView[],
  health: HealthValue[],
  services: ServiceValue[],
  localHost: string,
): LinkTarget | undefined {
  const unhealthy = new Set(health.filter((h) => h.status === 'critical').map((h) => h.endpointKey))
  const byName = endpoints.find((e) => e.value.name === target)
  const candidates = byName
    ? [byName]
    : endpoints
        .filter((e) => e.value.service === target && !unhealthy.has(e.key))
        .sort(
          (a, b) =>
            Number(b.value.host === localHost) - Number(a.value.host === localHost) ||
            a.value.name.localeCompare(b.value.name),
        )
  const picked = candidates[0]
  if (!picked) return undefined
  const svc = services.find((s) => s.name === (picked.value.service ?? target))
  const ports = picked.value.ports?.length ? picked.value.ports : (svc?.ports ?? [])
  return { name: picked.value.name, ipv4: picked.value.ipv4, host: picked.value.host, ports }
}

function envName(alias: string): string {
  return alias.toUpperCase().replace(/[^A-Z0-9]/g, '_')
}

/** The variables Docker sets for `--link target:alias` in container `linker`. */
export function linkEnv(linker: string, link: LinkSpec, t: LinkTarget): Record<string, string> {
  const p = envName(link.alias)
  const env: Record<string, string> = { [`${p}_NAME`]: `/${linker}/${link.alias}` }
  // Docker orders by port number; the lowest port also fills ALIAS_PORT.
  const ports = [...t.ports].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol))
  for (const port of ports) {
    const base = `${p}_PORT_${port.port}_${port.protocol.toUpperCase()}`
    const url = `${port.protocol}://${t.ipv4}:${port.port}`
    env[base] = url
    env[`${base}_ADDR`] = t.ipv4
    env[`${base}_PORT`] = String(port.port)
    env[`${base}_PROTO`] = port.protocol
  }
  const first = ports[0]
  if (first) env[`${p}_PORT`] = `${first.protocol}://${t.ipv4}:${first.port}`
  return env
}

/** One hosts line per link: `<ip> <alias> <target name>` (alias repeated names dropped). */
export function linkHostsLines(links: { link: LinkSpec; target: LinkTarget | undefined }[]): string[] {
  return links
    .filter((l): l is { link: LinkSpec; target: LinkTarget } => l.target !== undefined)
    .map(({ link, target }) => {
      const names = [link.alias, target.name].filter((n, i, a) => a.indexOf(n) === i)
      return `${target.ipv4}\t${names.join(' ')}`
    })
}

const BEGIN = '# BEGIN plexus links'
const END = '# END plexus links'

/** Replaces (or appends) the block Plexus manages in a hosts file, leaving every other line alone. */
export function withLinkBlock(hostsText: string, lines: string[]): string {
  const all = hostsText.split('\n')
  const start = all.indexOf(BEGIN)
  const stop = all.indexOf(END)
  const outside = start >= 0 && stop > start ? [...all.slice(0, start), ...all.slice(stop + 1)] : all
  while (outside.length && outside[outside.length - 1] === '') outside.pop()
  const block = lines.length ? [BEGIN, ...lines, END] : []
  return `${[...outside, ...block].join('\n')}\n`
}

/** where `ip netns add NAME` puts a namespace, and where `ip netns exec NAME` takes NAME's /etc files from */
const NETNS_DIRS = ['/run/netns/', '/var/run/netns/']

/**
 * Whether the agent may keep `path` as the hosts file of the container whose
 * endpoint (on this host) is `ep` (pure): the API runs as root and rewrites
 * the file in place, so a caller must not be able to point it at any file of
 * the host. Allowed: a file named `hosts` in a directory named by the
 * container id (podman `…/overlay-containers/<id>/userdata/hosts`, containerd
 * `…/sandboxes/<id>/hosts`, Docker `…/containers/<id>/hosts`), or the
 * `ip netns` hosts file of the container's own named namespace
 * (`/etc/netns/<name>/hosts`). The path must be absolute and normalized
 * (no `..`, no `//`); the writer also refuses symlinks (link-service.ts).
 * Returns the reason it is refused, or undefined.
 */
export function hostsFileProblem(
  path: string,
  ep: Pick<EndpointValue, 'containerId' | 'netns'>,
): string | undefined {
  if (!path.startsWith('/') || normalize(path) !== path || path.endsWith('/'))
    return 'must be an absolute, normalized path'
  if (basename(path) !== 'hosts') return 'must be a file named "hosts"'
  const dirs = path.split('/').slice(1, -1)
  if (dirs.includes(ep.containerId)) return undefined
  const nsDir = NETNS_DIRS.find((d) => ep.netns.startsWith(d))
  const nsName = nsDir && ep.netns.slice(nsDir.length)
  if (nsName && !nsName.includes('/') && path === `/etc/netns/${nsName}/hosts`) return undefined
  return `must lie in a directory named by the container id (${ep.containerId})${nsName ? ` or be /etc/netns/${nsName}/hosts` : ''}`
}
