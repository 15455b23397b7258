import { type Static, Type } from '@sinclair/typebox'

/** an overlay route, desired and whether it is in the kernel */
const Route = Type.Object({
  dst: Type.String(),
  gateway: Type.String(),
  dev: Type.String(),
  onlink: Type.Boolean(),
  host: Type.Optional(Type.String()),
  mode: Type.Optional(Type.String()),
  programmed: Type.Boolean(),
})

/** how a remote host is reached (or why it is refused) */
const Remote = Type.Object({
  peerId: Type.String(),
  host: Type.String(),
  subnet: Type.String(),
  publicIp: Type.String(),
  mode: Type.String(),
  reason: Type.Optional(Type.String()),
  programmed: Type.Boolean(),
})

const WireguardPeer = Type.Object({
  publicKey: Type.String(),
  endpoint: Type.String(),
  allowedIps: Type.Array(Type.String()),
  lastHandshake: Type.Integer(),
  rxBytes: Type.Integer(),
  txBytes: Type.Integer(),
})

/** the wireguard backend's device process and peers */
const Wireguard = Type.Object({
  implementation: Type.String(),
  ifname: Type.String(),
  socket: Type.String(),
  pid: Type.Optional(Type.Integer()),
  adopted: Type.Boolean(),
  restarts: Type.Integer(),
  publicKey: Type.Optional(Type.String()),
  /** the newest key rotation (config/wireguard-rotation) this host took up */
  keyGeneration: Type.Optional(Type.Integer()),
  /** present while a key rotation is under way: the key announced next */
  nextPublicKey: Type.Optional(Type.String()),
  listenPort: Type.Optional(Type.Integer()),
  peers: Type.Array(WireguardPeer),
})

const Failure = Type.Object({
  change: Type.String(),
  error: Type.String(),
  code: Type.Optional(Type.String()),
})

/** GET /v1/routes: the overlay datapath, desired vs programmed, drift repaired */
export const RoutesReply = Type.Object({
  state: Type.String(),
  reason: Type.Optional(Type.String()),
  backend: Type.Optional(Type.String()),
  subnet: Type.Optional(Type.String()),
  mtu: Type.Optional(Type.Integer()),
  firewall: Type.Object({ backend: Type.String(), variant: Type.Optional(Type.String()) }),
  routes: Type.Array(Route),
  remotes: Type.Array(Remote),
  /** drift repaired since start, by kind */
  repairs: Type.Record(Type.String(), Type.Integer()),
  passes: Type.Integer(),
  wireguard: Type.Optional(Wireguard),
  lastPass: Type.Optional(
    Type.Object({
      at: Type.String(),
      durationMs: Type.Integer(),
      changes: Type.Integer(),
      repairs: Type.Integer(),
      failed: Type.Array(Failure),
    }),
  ),
})
export type RoutesReply = Static<typeof RoutesReply>
