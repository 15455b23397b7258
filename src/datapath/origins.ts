// Pure: which store records each object of a pass's desired state came from
// (explain, src/lib/explain.ts). The network config and this host's lease
// make the bridge and the backend's device; each remote's lease its routes,
// neighbours, FDB entries and WireGuard peer; this host's endpoint records
// their veths' anti-spoofing rules; the rule providers name the records
// behind their own rules and switches.
import { NETWORK_CONFIG_KEY } from '../ipam/config.js'
import type { Origin } from '../lib/explain.js'
import { LEASE_PREFIX } from '../store/types.js'
import { backendFor } from './backend/index.js'
import { type DesiredInput, localContext } from './desired.js'
import type { DesiredState, RemoteEntries } from './model.js'

/** What a pass knew besides its desired input: the keys behind the endpoints and the providers' origins. */
export interface OriginSources {
  /** this host's endpoint records: key and host-side veth */
  endpoints: { key: string; hostVeth: string }[]
  /** the providers' origins (rule id, or `<kind> <dev>` of a switch → keys) by section name */
  provided: Record<string, Record<string, string[]>>
}

const leaseKey = (peerId: string) => `${LEASE_PREFIX}${peerId}`

function remoteOrigins(e: RemoteEntries, keys: string[]): Origin[] {
  return [
    ...e.routes.map((r) => ({ kind: 'route', object: `${r.dst} via ${r.gateway} dev ${r.dev}`, keys })),
    ...e.neighbours.map((n) => ({ kind: 'neigh', object: `${n.ip} lladdr ${n.mac} dev ${n.dev}`, keys })),
    ...e.fdb.map((f) => ({ kind: 'fdb', object: `${f.mac} dst ${f.dst} dev ${f.dev}`, keys })),
    ...(e.peers ?? []).map((p) => ({
      kind: 'peer',
      object: `${p.publicKey} endpoint ${p.endpoint} allowed-ips ${p.allowedIps.join(',')}`,
      keys,
    })),
  ]
}

export function datapathOrigins(input: DesiredInput, desired: DesiredState, src: OriginSources): Origin[] {
  const own = [NETWORK_CONFIG_KEY, leaseKey(input.peerId)]
  const out: Origin[] = desired.links.flatMap((l) => [
    { kind: 'link', object: l.name, keys: own },
    ...l.addresses.map((a) => ({ kind: 'address', object: `${a} dev ${l.name}`, keys: own })),
  ])
  // a remote's entries are computed again here, per lease, rather than carried by every pass
  const ctx = localContext(input)
  const backend = backendFor(input.network.Backend.Type)
  const programmed = new Set(desired.remotes.filter((r) => r.mode !== 'refused').map((r) => r.peerId))
  for (const lease of input.leases.valid) {
    if (!programmed.has(lease.peerId)) continue
    const entries = backend.remote(ctx, lease)
    if ('refused' in entries) continue
    out.push(...remoteOrigins(entries, [NETWORK_CONFIG_KEY, leaseKey(lease.peerId)]))
  }
  const byVeth = new Map(src.endpoints.map((e) => [e.hostVeth, e.key]))
  const members = [NETWORK_CONFIG_KEY, ...input.leases.valid.map((l) => leaseKey(l.peerId))]
  for (const section of desired.firewall.sections) {
    const provided = src.provided[section.name]
    for (const rule of section.rules) {
      const iif = rule.match.iif
      const keys = provided
        ? (provided[rule.id] ?? [])
        : section.name === 'spoof'
          ? [byVeth.get(iif ?? '')].filter((k): k is string => k !== undefined)
          : section.name === 'isolation'
            ? members
            : [NETWORK_CONFIG_KEY]
      out.push({ kind: 'rule', object: `plexus:${section.name}/${rule.id} hook ${rule.hook}`, keys })
    }
  }
  const switches = Object.values(src.provided)
  for (const s of desired.switches ?? []) {
    const id = `${s.kind} ${s.dev}`
    out.push({
      kind: 'switch',
      object: `${id} ${s.on ? 'on' : 'off'}`,
      keys: switches.flatMap((p) => p[id] ?? []),
    })
  }
  for (const e of src.endpoints) out.push({ kind: 'veth', object: e.hostVeth, keys: [e.key] })
  return out
}
