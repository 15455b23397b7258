// Which of the UI's views a store change touches, by the changed key's prefix (the key layout of
// src/store/types.ts), so an event from the watch stream re-reads only those. Pure; unit-tested.

/** a resource the UI reads with one GET */
export type Resource = 'hosts' | 'subnets' | 'endpoints' | 'links' | 'services' | 'jobs' | 'allocs' | 'kv'

export const RESOURCES: readonly Resource[] = [
  'hosts',
  'subnets',
  'endpoints',
  'links',
  'services',
  'jobs',
  'allocs',
  'kv',
]

const BY_PREFIX: [string, Resource[]][] = [
  ['nodes/', ['hosts']],
  ['config/labels/', ['hosts']],
  ['config/drain/', ['hosts']],
  ['leases/', ['subnets', 'hosts']],
  // links are this agent's own state, not records: they are re-read when an endpoint they may point at changes
  ['endpoints/', ['endpoints', 'links', 'services']],
  ['registrations/', ['services']],
  ['health/', ['services']],
  ['services/', ['services']],
  ['jobs/', ['jobs']],
  ['allocs/', ['jobs', 'allocs']],
  ['allocstate/', ['jobs', 'allocs']],
  ['capacity/', ['jobs']],
]

/** every resource a change of `key` may alter; the KV browser shows every key, so it is always one */
export function touched(key: string | undefined): Set<Resource> {
  if (key === undefined) return new Set(RESOURCES)
  const out = new Set<Resource>(['kv'])
  for (const [prefix, resources] of BY_PREFIX)
    if (key.startsWith(prefix)) for (const r of resources) out.add(r)
  return out
}
