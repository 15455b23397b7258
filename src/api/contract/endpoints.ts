import { type Static, Type } from '@sinclair/typebox'

const Strings = Type.Array(Type.String())

/** a port the container declares (service discovery: SRV records) */
const Port = Type.Object({
  name: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer()),
  protocol: Type.Optional(Type.String()),
})

/** a port published on the host (DNAT to the container) */
const Published = Type.Object({
  hostIp: Type.Optional(Type.String()),
  hostPort: Type.Optional(Type.Integer()),
  containerPort: Type.Optional(Type.Integer()),
  protocol: Type.Optional(Type.String()),
})

const endpointFields = {
  key: Type.String(),
  owner: Type.String(),
  local: Type.Boolean(),
  containerId: Type.String(),
  ifname: Type.String(),
  name: Type.String(),
  namespace: Type.Optional(Type.String()),
  host: Type.String(),
  ipv4: Type.String(),
  mac: Type.Optional(Type.String()),
  netns: Type.Optional(Type.String()),
  hostVeth: Type.Optional(Type.String()),
  /** the default route's next hop, when the attachment asked for one other than the bridge */
  gateway: Type.Optional(Type.String()),
  /** extra routes the attachment asked for */
  routes: Type.Optional(Type.Array(Type.Object({ dst: Type.String(), gw: Type.String() }))),
  service: Type.Optional(Type.String()),
  tags: Type.Optional(Strings),
  ports: Type.Optional(Type.Array(Port)),
  published: Type.Optional(Type.Array(Published)),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  createdAt: Type.String(),
  /** why the address is not served: outside every valid lease of its host (lost or withdrawn subnet) */
  withdrawn: Type.Optional(Type.String()),
}

/** a container endpoint, from its store record, as GET /v1/endpoints lists it */
export const Endpoint = Type.Object(endpointFields)
export type Endpoint = Static<typeof Endpoint>

/** what the kernel holds for a local endpoint (veth, the container's side, its resolv.conf), and what is wrong */
export const EndpointLive = Type.Object({
  hostVeth: Type.Optional(
    Type.Object({
      name: Type.String(),
      up: Type.Boolean(),
      mtu: Type.Integer(),
      mac: Type.Optional(Type.String()),
      bridge: Type.Boolean(),
    }),
  ),
  container: Type.Optional(
    Type.Object({
      ifname: Type.String(),
      up: Type.Boolean(),
      mtu: Type.Integer(),
      mac: Type.Optional(Type.String()),
      addresses: Strings,
      routes: Type.Array(Type.Object({ dst: Type.String(), gateway: Type.Optional(Type.String()) })),
    }),
  ),
  dns: Type.Optional(
    Type.Object({
      nameservers: Type.Optional(Strings),
      search: Type.Optional(Strings),
      options: Type.Optional(Strings),
      domain: Type.Optional(Type.String()),
    }),
  ),
  problems: Strings,
})

/** GET /v1/endpoints */
export const EndpointsReply = Type.Object({ endpoints: Type.Array(Endpoint) })
export type EndpointsReply = Static<typeof EndpointsReply>

/** GET /v1/endpoints/:id (container id or name, else a unique id prefix) */
export const EndpointParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 256, pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }),
})

/** the endpoints of one container (one per interface), with the kernel's view of the local ones */
export const EndpointDetail = Type.Object({ ...endpointFields, live: Type.Optional(EndpointLive) })
export type EndpointDetail = Static<typeof EndpointDetail>
export const EndpointDetailReply = Type.Object({ endpoints: Type.Array(EndpointDetail) })
export type EndpointDetailReply = Static<typeof EndpointDetailReply>
