import type { FastifyPluginAsync } from 'fastify'
import type { ApiDeps } from '../deps.js'

const route = {
  type: 'object',
  required: ['dst', 'gateway', 'dev', 'onlink', 'programmed'],
  properties: {
    dst: { type: 'string' },
    gateway: { type: 'string' },
    dev: { type: 'string' },
    onlink: { type: 'boolean' },
    host: { type: 'string' },
    mode: { type: 'string' },
    programmed: { type: 'boolean' },
  },
} as const

const remote = {
  type: 'object',
  required: ['peerId', 'host', 'subnet', 'publicIp', 'mode', 'programmed'],
  properties: {
    peerId: { type: 'string' },
    host: { type: 'string' },
    subnet: { type: 'string' },
    publicIp: { type: 'string' },
    mode: { type: 'string' },
    reason: { type: 'string' },
    programmed: { type: 'boolean' },
  },
} as const

const failure = {
  type: 'object',
  required: ['change', 'error'],
  properties: { change: { type: 'string' }, error: { type: 'string' }, code: { type: 'string' } },
} as const

const wgPeer = {
  type: 'object',
  required: ['publicKey', 'endpoint', 'allowedIps', 'lastHandshake', 'rxBytes', 'txBytes'],
  properties: {
    publicKey: { type: 'string' },
    endpoint: { type: 'string' },
    allowedIps: { type: 'array', items: { type: 'string' } },
    lastHandshake: { type: 'integer' },
    rxBytes: { type: 'integer' },
    txBytes: { type: 'integer' },
  },
} as const

/** the wireguard backend's device process and peers */
const wireguard = {
  type: 'object',
  required: ['implementation', 'ifname', 'socket', 'adopted', 'restarts', 'peers'],
  properties: {
    implementation: { type: 'string' },
    ifname: { type: 'string' },
    socket: { type: 'string' },
    pid: { type: 'integer' },
    adopted: { type: 'boolean' },
    restarts: { type: 'integer' },
    publicKey: { type: 'string' },
    listenPort: { type: 'integer' },
    peers: { type: 'array', items: wgPeer },
  },
} as const

/** The overlay datapath: desired vs programmed routes, how each remote host is reached, drift repaired. */
export const routeRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/routes',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            required: ['state', 'firewall', 'routes', 'remotes', 'repairs', 'passes'],
            properties: {
              state: { type: 'string' },
              reason: { type: 'string' },
              backend: { type: 'string' },
              subnet: { type: 'string' },
              mtu: { type: 'integer' },
              firewall: {
                type: 'object',
                required: ['backend'],
                properties: { backend: { type: 'string' }, variant: { type: 'string' } },
              },
              routes: { type: 'array', items: route },
              remotes: { type: 'array', items: remote },
              repairs: { type: 'object', additionalProperties: { type: 'integer' } },
              passes: { type: 'integer' },
              wireguard,
              lastPass: {
                type: 'object',
                required: ['at', 'durationMs', 'changes', 'repairs', 'failed'],
                properties: {
                  at: { type: 'string' },
                  durationMs: { type: 'integer' },
                  changes: { type: 'integer' },
                  repairs: { type: 'integer' },
                  failed: { type: 'array', items: failure },
                },
              },
            },
          },
        },
      },
    },
    async () =>
      deps.datapath?.status() ?? {
        state: 'disabled',
        reason: 'the datapath is not running on this agent',
        firewall: { backend: 'none' },
        routes: [],
        remotes: [],
        repairs: {},
        passes: 0,
      },
  )
}
