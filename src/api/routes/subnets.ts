import type { FastifyPluginAsync } from 'fastify'
import { subnetsReport } from '../../ipam/network.js'
import type { ApiDeps } from '../deps.js'

const leaseRow = {
  type: 'object',
  required: ['peerId', 'host', 'subnet', 'publicIp', 'backend', 'claimedAt', 'expiresInSeconds', 'self'],
  properties: {
    peerId: { type: 'string' },
    host: { type: 'string' },
    subnet: { type: 'string' },
    publicIp: { type: 'string' },
    backend: { type: 'string' },
    vtepMac: { type: 'string' },
    claimedAt: { type: 'string' },
    expiresInSeconds: { type: 'integer' },
    self: { type: 'boolean' },
  },
} as const

const invalidRow = {
  type: 'object',
  required: ['key', 'owner', 'kind', 'reason'],
  properties: {
    key: { type: 'string' },
    owner: { type: 'string' },
    kind: { type: 'string' },
    reason: { type: 'string' },
    subnet: { type: 'string' },
    heldBy: { type: 'string' },
  },
} as const

const selfSchema = {
  type: 'object',
  required: ['peerId', 'state', 'since'],
  properties: {
    peerId: { type: 'string' },
    state: { type: 'string' },
    reason: { type: 'string' },
    subnet: { type: 'string' },
    since: { type: 'string' },
    confirmedAt: { type: 'string' },
    fenceAt: { type: 'string' },
    withdrawAt: { type: 'string' },
    /** this host's containers whose addresses lie outside its lease (lost or withdrawn subnet) */
    withdrawn: {
      type: 'array',
      items: {
        type: 'object',
        required: ['containerId', 'ifname', 'address'],
        properties: {
          containerId: { type: 'string' },
          ifname: { type: 'string' },
          address: { type: 'string' },
        },
      },
    },
  },
} as const

/** Host-subnet leases across the cluster, the ignored ones with reasons, and this host's lease state. */
export const subnetRoutes: FastifyPluginAsync<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get(
    '/v1/subnets',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            required: ['network', 'leases', 'invalid', 'self'],
            properties: {
              network: { type: ['string', 'null'] },
              leases: { type: 'array', items: leaseRow },
              invalid: { type: 'array', items: invalidRow },
              self: selfSchema,
            },
          },
        },
      },
    },
    async () => {
      const status = deps.lease?.status() ?? { state: 'disabled', since: deps.startedAt.toISOString() }
      const withdrawn = (deps.addresses?.stale() ?? []).map((a) => ({
        containerId: a.containerId,
        ifname: a.ifname,
        address: a.address,
      }))
      return { ...subnetsReport(deps.store), self: { peerId: deps.peerId, ...status, withdrawn } }
    },
  )
}
