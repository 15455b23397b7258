// PLEXUS_TALKSTO_*: the DNS name of what a group talks to and its addresses
// at start, nearest first; groups of the same job without a service by where
// their allocations run.
import t from 'tap'
import { talksToEnv, talksToVar } from '../../../src/runner/talks-to.js'
import type { JobSpec } from '../../../src/scheduler/spec.js'
import type { Catalog, Member } from '../../../src/services/catalog.js'
import type { AllocStateValue, NodeValue } from '../../../src/store/records.js'

const node = (peer: string, x: number): { peer: string; value: NodeValue } => ({
  peer,
  value: {
    name: peer,
    address: '192.0.2.1',
    coordinate: { vec: [x, 0, 0, 0, 0, 0, 0, 0], height: 0.0001, error: 0.1, adjustment: 0 },
  },
})
const member = (service: string, peer: string, ipv4: string, healthy = true, port?: number): Member => ({
  service,
  endpointKey: `endpoints/${peer}/${ipv4}`,
  peer,
  host: peer,
  name: `c-${ipv4}`,
  ipv4,
  tags: [],
  ports: port ? [{ port, protocol: 'tcp' }] : [],
  checks: [],
  checkStates: [],
  healthy,
  source: 'cni',
})
const task = {
  name: 't',
  driver: 'exec' as const,
  config: { command: ['sleep', '1'] },
  resources: { cpu: 100, memoryMb: 16 },
}
const job: JobSpec = {
  name: 'shop',
  type: 'service',
  groups: [
    {
      name: 'front',
      count: 1,
      tasks: [task],
      talksTo: [{ service: 'api' }, { service: 'cache' }, { service: 'user-db' }],
    },
    { name: 'backend', count: 2, tasks: [task], service: { name: 'api' } },
    { name: 'cache', count: 2, tasks: [task] },
  ],
}
// self is h1 at x=0; h3 (x=0.001) is nearer than h2 (x=0.05)
const nodes = [node('h1', 0), node('h2', 0.05), node('h3', 0.001)]
const catalog: Catalog = {
  services: new Map([
    [
      'api',
      {
        name: 'api',
        members: [
          member('api', 'h2', '10.0.2.5', true, 8080),
          member('api', 'h3', '10.0.3.5', true, 8080),
          member('api', 'h3', '10.0.3.9', false, 8080),
        ],
      },
    ],
    [
      'user-db',
      {
        name: 'user-db',
        members: [member('user-db', 'h2', '10.0.2.7'), member('user-db', 'h1', '10.0.1.7')],
      },
    ],
  ]),
  endpoints: [],
  nodes,
  invalid: 0,
}
const alloc = (
  id: string,
  group: string,
  host: string,
  status: AllocStateValue['status'],
  address?: string,
): AllocStateValue =>
  ({
    id,
    job: 'shop',
    group,
    slot: '0',
    host,
    hostName: host,
    resources: { cpu: 100, memoryMb: 16 },
    createdAt: 1,
    status,
    updatedAt: 1,
    ...(address ? { address } : {}),
  }) as AllocStateValue

t.test('variable names: upper case, dashes to underscores', async (t) => {
  t.equal(talksToVar('user-db'), 'PLEXUS_TALKSTO_USER_DB')
})

t.test('services: DNS name and healthy members nearest first with their port', async (t) => {
  const env = talksToEnv({
    talksTo: job.groups[0]?.talksTo ?? [],
    job,
    catalog,
    allocs: [
      alloc('a1', 'cache', 'h2', 'running', '10.0.2.9'),
      alloc('a2', 'cache', 'h3', 'running', '10.0.3.8'),
      alloc('a3', 'cache', 'h3', 'failed', '10.0.3.10'),
      alloc('a4', 'front', 'h1', 'running', '10.0.1.2'),
    ],
    self: 'h1',
    origin: 'plexus.internal',
  })
  t.same(env, {
    // a group of the job named by its service
    PLEXUS_TALKSTO_API: 'api.svc.plexus.internal',
    PLEXUS_TALKSTO_API_ADDRS: '10.0.3.5:8080,10.0.2.5:8080',
    // a group of the job without a service: its running allocations, no name
    PLEXUS_TALKSTO_CACHE_ADDRS: '10.0.3.8,10.0.2.9',
    // a service of another job: this host's own member first
    PLEXUS_TALKSTO_USER_DB: 'user-db.svc.plexus.internal',
    PLEXUS_TALKSTO_USER_DB_ADDRS: '10.0.1.7,10.0.2.7',
  })
})

t.test('a service nobody serves yet: the name, and no addresses', async (t) => {
  const env = talksToEnv({
    talksTo: [{ service: 'search' }],
    job,
    catalog,
    allocs: [],
    self: 'h1',
    origin: 'plexus.internal',
  })
  t.same(env, { PLEXUS_TALKSTO_SEARCH: 'search.svc.plexus.internal', PLEXUS_TALKSTO_SEARCH_ADDRS: '' })
})
