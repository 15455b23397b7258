// The codec of every well-known key prefix (key layout: types.ts; value
// shapes: records.ts, their schemas: schemas.ts). Readers decode through
// these and skip what does not decode, counting or logging it as they did;
// writers encode through them.
import { type Agrees, recordCodec } from './codec.js'
import type {
  AllocStateValue,
  AllocValue,
  CapacityValue,
  EndpointValue,
  HealthValue,
  LeaseValue,
  NetMemberValue,
  NetworkLinkValue,
  NetworkValue,
  NodeValue,
  RegistrationValue,
  ServiceValue,
} from './records.js'
import {
  AclDefaultRecord,
  type AclDefaultValue,
  AclPolicyRecord,
  type AclPolicyValue,
  AclTokenRecord,
  type AclTokenValue,
  AllocRecord,
  AllocStateRecord,
  CapacityRecord,
  DrainRecord,
  type DrainValue,
  EndpointRecord,
  HealthRecord,
  LabelsRecord,
  type LabelsValue,
  LeaseRecord,
  NetMemberRecord,
  NetworkLinkRecord,
  NetworkRecord,
  NodeRecord,
  RegistrationRecord,
  ServiceRecord,
  TrafficRecord,
  type TrafficValue,
  WireguardRotationRecord,
  type WireguardRotationValue,
} from './schemas.js'
import {
  ACL_DEFAULT_KEY,
  ACL_POLICY_PREFIX,
  ACL_TOKEN_PREFIX,
  ALLOC_PREFIX,
  ALLOC_STATE_PREFIX,
  CAPACITY_PREFIX,
  DRAIN_PREFIX,
  ENDPOINT_PREFIX,
  HEALTH_PREFIX,
  LABELS_PREFIX,
  LEASE_PREFIX,
  NET_LEASE_PREFIX,
  NET_MEMBER_PREFIX,
  NETWORK_LINKS_PREFIX,
  NETWORKS_PREFIX,
  NODE_PREFIX,
  REGISTRATION_PREFIX,
  SERVICE_PREFIX,
  TRAFFIC_PREFIX,
  WIREGUARD_ROTATION_KEY,
} from './types.js'

/** the key's segments after its prefix */
const segments = (key: string, prefix: string): string[] => key.slice(prefix.length).split('/')

/** "<what> is <value>, the key says <segment>" when they differ */
const differs = (what: string, value: string, segment: string | undefined): string | undefined =>
  value === segment ? undefined : `${what} is ${value}, the key says ${segment ?? '(nothing)'}`

/** the lease's shape; its subnet's and endpoint's meaning are the lease rules' (src/ipam/leases.ts parseLease) */
export const leaseCodec = recordCodec<LeaseValue>(LEASE_PREFIX, LeaseRecord)

/** a block of a named network's range: a lease like the cluster network's, keyed netleases/<peerId>/<network> */
export const netLeaseCodec = recordCodec<LeaseValue>(NET_LEASE_PREFIX, LeaseRecord)

/** keyed by the network's name: the value names the same */
export const networkCodec = recordCodec<NetworkValue>(NETWORKS_PREFIX, NetworkRecord, (key, v) =>
  differs('name', v.name, key.slice(NETWORKS_PREFIX.length)),
)

/** keyed by the two networks' names: the value names the same */
export const networkLinkCodec = recordCodec<NetworkLinkValue>(
  NETWORK_LINKS_PREFIX,
  NetworkLinkRecord,
  (key, v) => differs('from/to', `${v.from}/${v.to}`, key.slice(NETWORK_LINKS_PREFIX.length)),
)

export const nodeCodec = recordCodec<NodeValue>(NODE_PREFIX, NodeRecord)

export const endpointCodec = recordCodec<EndpointValue>(ENDPOINT_PREFIX, EndpointRecord)

/** keyed netmembers/<peerId>/<network>/<containerId>/<ifname>: the value names the same network and interface */
export const netMemberCodec = recordCodec<NetMemberValue>(NET_MEMBER_PREFIX, NetMemberRecord, (key, v) => {
  const [, network, containerId, ifname, ...rest] = segments(key, NET_MEMBER_PREFIX)
  if (rest.length) return `key ${key} has more segments than <peer>/<network>/<container>/<ifname>`
  return (
    differs('network', v.network, network) ??
    differs('containerId', v.containerId, containerId) ??
    differs('ifname', v.ifname, ifname)
  )
})

export const serviceCodec = recordCodec<ServiceValue>(SERVICE_PREFIX, ServiceRecord, (key, v) =>
  differs('name', v.name, key.slice(SERVICE_PREFIX.length)),
)

export const registrationCodec = recordCodec<RegistrationValue>(REGISTRATION_PREFIX, RegistrationRecord)

/** a health record counts only from the endpoint's own host (the key's owner) */
export const healthCodec = recordCodec<HealthValue>(HEALTH_PREFIX, HealthRecord, (key, v) =>
  differs('the endpoint host', v.endpointKey.split('/')[1] ?? '', segments(key, HEALTH_PREFIX)[0]),
)

export const capacityCodec = recordCodec<CapacityValue>(CAPACITY_PREFIX, CapacityRecord)

export const trafficCodec = recordCodec<TrafficValue>(TRAFFIC_PREFIX, TrafficRecord)

/** keyed by the job's owner, job, group and slot: the value names the same */
export const allocCodec = recordCodec<AllocValue>(ALLOC_PREFIX, AllocRecord, (key, a) => {
  const [, job, group, slot] = segments(key, ALLOC_PREFIX)
  return differs('job', a.job, job) ?? differs('group', a.group, group) ?? differs('slot', a.slot, slot)
})

/** keyed by the host that judges it and the allocation's id: the value names the same */
export const allocStateCodec = recordCodec<AllocStateValue>(
  ALLOC_STATE_PREFIX,
  AllocStateRecord,
  (key, s) => {
    const [host, id] = segments(key, ALLOC_STATE_PREFIX)
    return differs('host', s.host, host) ?? differs('id', s.id, id)
  },
)

export const aclPolicyCodec = recordCodec<AclPolicyValue>(ACL_POLICY_PREFIX, AclPolicyRecord, (key, v) =>
  differs('name', v.name, key.slice(ACL_POLICY_PREFIX.length)),
)

/** for a codec of one key rather than a prefix: `<key>-x` starts with it and is still not one of its records */
const onlyKey =
  (only: string): Agrees<unknown> =>
  (key) =>
    key === only ? undefined : `not ${only}`

export const aclDefaultCodec = recordCodec<AclDefaultValue>(
  ACL_DEFAULT_KEY,
  AclDefaultRecord,
  onlyKey(ACL_DEFAULT_KEY),
)

/** the key names the secret's hash, so a token is found without listing */
export const aclTokenCodec = recordCodec<AclTokenValue>(ACL_TOKEN_PREFIX, AclTokenRecord, (key) =>
  /^[0-9a-f]{64}$/.test(key.slice(ACL_TOKEN_PREFIX.length))
    ? undefined
    : 'not a sha256 in hex after acl/tokens/',
)

/** keyed by the host's name, not its peer id: an operator labels a host by the name it knows */
export const labelsCodec = recordCodec<LabelsValue>(LABELS_PREFIX, LabelsRecord)

export const drainCodec = recordCodec<DrainValue>(DRAIN_PREFIX, DrainRecord)

/** the newest key rotation asked of every host (src/datapath/backend/wireguard/rotation.ts) */
export const wireguardRotationCodec = recordCodec<WireguardRotationValue>(
  WIREGUARD_ROTATION_KEY,
  WireguardRotationRecord,
  onlyKey(WIREGUARD_ROTATION_KEY),
)
